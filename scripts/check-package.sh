#!/usr/bin/env bash
# Installs a dataservice-sync .deb on this machine and checks it as a
# gateway would get it, then purges it and checks nothing is left. Root.
#   bash scripts/check-package.sh target/dist/dataservice-sync_<version>_amd64.deb
# Needs systemd-analyze (package systemd). Leaves the machine as it found it.
set -euo pipefail
deb=$(realpath "$1")
conf=/etc/dataservice-sync/config.toml
unit=/usr/lib/systemd/system/dataservice-sync.service
spool=/var/lib/dataservice-sync
fail() { echo "check-package: $*" >&2; exit 1; }
repo=$(cd "$(dirname "$0")/.." && pwd)
leftovers() {
  find /etc /usr /var \( -path "$repo" -o -path /var/cache \) -prune -o -name '*dataservice-sync*' -print 2>/dev/null | sort
}

[ -z "$(leftovers)" ] || fail "dataservice-sync is installed already: $(leftovers)"
echo "--- apt-get install $deb"
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$deb"
dpkg-query -W -f='${Package} ${Version} ${Architecture} ${Status}\n' dataservice-sync

echo "--- the installed binary, configuration and unit"
dataservice-sync --version
dataservice-sync config check --quiet "$conf" || fail "config check rejects the shipped $conf"
verify=$(systemd-analyze verify "$unit" 2>&1) || fail "systemd-analyze verify: $verify"
[ -z "$verify" ] || fail "systemd-analyze verify: $verify"
grep -qx "ExecStart=/usr/bin/dataservice-sync --config $conf" "$unit" || fail "$unit: ExecStart"
grep -qx "ExecReload=/bin/kill -HUP \$MAINPID" "$unit" || fail "$unit: ExecReload"
dpkg-query -W -f='${Conffiles}\n' dataservice-sync | grep -qx " $conf [0-9a-f]*" ||
  fail "$conf is not a conffile"
for f in /usr/share/man/man1/dataservice-sync.1.gz \
  /usr/share/bash-completion/completions/dataservice-sync \
  /usr/share/zsh/vendor-completions/_dataservice-sync \
  /usr/share/fish/vendor_completions.d/dataservice-sync.fish \
  /usr/share/doc/dataservice-sync/README.md /usr/share/doc/dataservice-sync/copyright; do
  [ -s "$f" ] || fail "$f missing"
done
# The gateway build has no simulated peers, and says so.
if out=$(dataservice-sync demo 2>&1); then fail "demo ran in a gateway build"; fi
echo "$out" | grep -q "carries no simulated peers" || fail "demo: $out"

echo "--- upgrade (reinstall) keeps a local edit of the conffile and the spool"
echo '# local edit' >>"$conf"
mkdir -p "$spool" && echo kept >"$spool/check-package"
dpkg -i --force-confold "$deb" >/dev/null
tail -n 1 "$conf" | grep -qx '# local edit' || fail "the reinstall lost the edit of $conf"
[ -f "$spool/check-package" ] || fail "the reinstall removed $spool"

echo "--- remove keeps the configuration and the spool; purge removes them"
DEBIAN_FRONTEND=noninteractive apt-get remove -y -qq dataservice-sync
[ -f "$conf" ] && [ -f "$spool/check-package" ] || fail "remove took the configuration or the spool"
DEBIAN_FRONTEND=noninteractive apt-get purge -y -qq dataservice-sync
left=$(leftovers)
[ -z "$left" ] || fail "left after purge: $left"
echo "check-package: $(basename "$deb") installs, checks, upgrades and purges clean"
