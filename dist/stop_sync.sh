#!/bin/sh
# Stops dataservice-sync started by start_sync.sh: SIGTERM (it finishes its
# in-flight writes and exits 0), then SIGKILL after the timeout.
#   DATASERVICE_SYNC_PID           (default: /var/run/dataservice-sync.pid)
#   DATASERVICE_SYNC_STOP_TIMEOUT  seconds (default: 15)
set -eu
pidfile=${DATASERVICE_SYNC_PID:-/var/run/dataservice-sync.pid}
timeout=${DATASERVICE_SYNC_STOP_TIMEOUT:-15}

if [ ! -f "$pidfile" ]; then
  echo "dataservice-sync is not running (no $pidfile)"
  exit 0
fi
pid=$(cat "$pidfile")
if ! kill -0 "$pid" 2>/dev/null; then
  echo "dataservice-sync is not running (stale $pidfile)"
  rm -f "$pidfile"
  exit 0
fi
kill -TERM "$pid"
waited=0
while kill -0 "$pid" 2>/dev/null; do
  if [ "$waited" -ge "$timeout" ]; then
    echo "dataservice-sync did not stop within ${timeout}s: SIGKILL" >&2
    kill -KILL "$pid" 2>/dev/null || true
    break
  fi
  sleep 1
  waited=$((waited + 1))
done
rm -f "$pidfile"
echo "dataservice-sync stopped"
