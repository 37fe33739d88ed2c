#!/usr/bin/env bash
# Prints those of the Debian packages named that are not installed, one a line.
#   scripts/missing-packages.sh PACKAGE...
set -euo pipefail
for p in "$@"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || echo "$p"
done
