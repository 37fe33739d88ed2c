#!/usr/bin/env bash
# Installs those of the Debian packages named that are not installed yet
# (none: does nothing, needs no root).
#   scripts/install-packages.sh PACKAGE...
set -euo pipefail
missing=()
for p in "$@"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
[ ${#missing[@]} -gt 0 ] || exit 0
[ "$(id -u)" = 0 ] || { echo "not root: cannot install ${missing[*]}" >&2; exit 1; }
echo "installing: ${missing[*]}" >&2
# Never add a foreign dpkg architecture: apt would then mix in that
# architecture's packages; the cross builds need none.
apt-get update -qq
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}"
