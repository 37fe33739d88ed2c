#!/bin/sh
# Starts dataservice-sync in the background without systemd: PID file, log
# file. Extra arguments go to dataservice-sync.
#   DATASERVICE_SYNC_BIN  (default: dataservice-sync on PATH, else ./dataservice-sync)
#   DATASERVICE_SYNC_PID  (default: /var/run/dataservice-sync.pid)
#   DATASERVICE_SYNC_LOG  (default: /var/log/dataservice-sync.log)
set -eu
bin=${DATASERVICE_SYNC_BIN:-$(command -v dataservice-sync || echo ./dataservice-sync)}
pidfile=${DATASERVICE_SYNC_PID:-/var/run/dataservice-sync.pid}
logfile=${DATASERVICE_SYNC_LOG:-/var/log/dataservice-sync.log}

if [ -f "$pidfile" ] && kill -0 "$(cat "$pidfile")" 2>/dev/null; then
  echo "dataservice-sync is already running (pid $(cat "$pidfile"))"
  exit 0
fi
nohup "$bin" "$@" >>"$logfile" 2>&1 </dev/null &
pid=$!
echo "$pid" >"$pidfile"
sleep 1
if kill -0 "$pid" 2>/dev/null; then
  echo "dataservice-sync started (pid $pid), logging to $logfile"
else
  rm -f "$pidfile"
  echo "dataservice-sync exited at once; last log lines:" >&2
  tail -n 5 "$logfile" >&2
  exit 1
fi
