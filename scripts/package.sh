#!/usr/bin/env bash
# Builds everything a release ships into target/dist/, on Debian 12 x86_64
# as root (it installs its tools, see scripts/static.sh):
#   - dataservice-sync_<version>_{armhf,arm64,amd64}.deb: the static binary,
#     the systemd unit, /etc/dataservice-sync/config.toml (a conffile), man
#     pages, bash/zsh/fish completions and the documentation;
#   - dataservice-sync-<version>-<target>.tar.gz: the same tree, for gateways
#     without dpkg (unpack with `tar -C / -xzf`);
#   - SHA256SUMS of all of them.
# Each package is checked with lintian (errors fail the build) when lintian
# is installed.
#
#   bash scripts/package.sh            setup, build, package
#   PACKAGE_SKIP_BUILD=1 bash scripts/package.sh   package the binaries already built
set -euo pipefail
cd "$(dirname "$0")/.."
dist=target/dist
gen=$dist/gen

if [ -z "${PACKAGE_SKIP_BUILD:-}" ]; then
  bash scripts/static.sh setup
  bash scripts/static.sh build
fi
eval "$(bash scripts/static.sh env)"
targets=${STATIC_TARGETS:-"armv7-unknown-linux-musleabihf aarch64-unknown-linux-musl x86_64-unknown-linux-musl"}
version=$(sed -n 's/^version = "\(.*\)"$/\1/p' Cargo.toml | head -n 1)
# The files' dates: the commit's, so that a rebuild gives the same tarball.
release_time=$(git log -1 --format=%ct 2>/dev/null || date +%s)

rm -rf "$dist"
mkdir -p "$gen"
# Man pages and completions from the clap definition of a gateway build (no
# demo), built by the host's own toolchain: the options are the same on
# every target.
env -u RUSTC -u RUSTDOC -u RUSTC_BOOTSTRAP -u CARGO_TARGET_DIR -u RUSTDOCFLAGS \
  cargo run --quiet --locked -p dataservice-sync --no-default-features --example gen-docs -- "$gen"
gzip -9n "$gen"/man/*.1

for t in $targets; do
  deb=$("$DSS_TOOLS_BIN/cargo-deb" -p dataservice-sync --no-build --target "$t" -o "$dist/" 2>/dev/null)
  arch=$(dpkg-deb --field "$deb" Architecture)
  echo "=== $(basename "$deb"): $(stat -c %s "$deb") bytes"
  dpkg-deb --field "$deb" Package Version Architecture Installed-Size Depends
  if command -v lintian >/dev/null; then
    # Errors fail; warnings and the rest are shown.
    lintian --fail-on error --info "$deb"
    echo "lintian $arch: no errors"
  fi
  # The tarball: the package's own tree, so that both install the same files.
  tree=$(mktemp -d)
  dpkg-deb -x "$deb" "$tree"
  rm -rf "$tree/usr/share/lintian"
  # Its top directories by name, not ".": unpacked with `tar -C /`, an entry
  # for "." would reset the root directory's mode.
  tar -C "$tree" --owner=0 --group=0 --numeric-owner --sort=name --mtime="@$release_time" \
    -czf "$dist/dataservice-sync-$version-$t.tar.gz" $(ls "$tree")
  rm -rf "$tree"
  if ! diff <(dpkg-deb --fsys-tarfile "$deb" | tar -t | sed 's#^\./##; /^$/d; /lintian/d' | sort) \
    <(tar -tzf "$dist/dataservice-sync-$version-$t.tar.gz" | sort); then
    echo "the tarball of $t does not hold the package's files" >&2
    exit 1
  fi
done
rm -rf "$gen"
(cd "$dist" && sha256sum -- *.deb *.tar.gz >SHA256SUMS)
echo "=== $dist"
ls -l "$dist"
