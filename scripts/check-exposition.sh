#!/usr/bin/env bash
# Runs the demo and checks its /metrics with promtool (the Prometheus
# project's own linter of the text format).
#   scripts/check-exposition.sh BINARY
set -euo pipefail
bin=${1:?usage: check-exposition.sh BINARY}
port=19108
log=$(mktemp)
"$bin" demo --duration 4 --status-listen "127.0.0.1:$port" >"$log" 2>&1 &
demo=$!
trap 'kill "$demo" 2>/dev/null || true; rm -f "$log"' EXIT
metrics=""
for _ in $(seq 50); do
  sleep 0.1
  metrics=$(python3 -c "import urllib.request,sys; sys.stdout.write(urllib.request.urlopen('http://127.0.0.1:$port/metrics', timeout=2).read().decode())" 2>/dev/null) && break
done
[ -n "$metrics" ] || { cat "$log"; echo "no /metrics from the demo" >&2; exit 1; }
printf '%s\n' "$metrics" | promtool check metrics
echo "promtool check metrics: $(printf '%s\n' "$metrics" | grep -c '^# TYPE') families, no problems"
wait "$demo"
