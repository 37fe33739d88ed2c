#!/usr/bin/env bash
# Static (musl) builds of dataservice-sync for the gateways, on Debian 12
# x86_64 without Docker or rustup targets. Needs root (apt, binfmt_misc).
#
#   scripts/static.sh setup     the tools: Debian packages, zig and cargo-zigbuild
#                               (PyPI, in a venv), cargo-deb; binfmt_misc for qemu
#   scripts/static.sh tools     the same without the Debian packages
#   scripts/static.sh build     gateway release binaries (no simulated peers),
#                               checked static; sizes printed
#   scripts/static.sh test      the whole test suite per target, ARM under qemu-user
#   scripts/static.sh run-demo  each built ARM binary: --version, then a short
#                               sync against the simulated peers, under qemu
#   scripts/static.sh packages  the Debian packages setup installs
#   scripts/static.sh env       the environment lines the steps use (to source)
#
# How: Debian's rustc-web and its library source build std for each musl
# target (cargo -Zbuild-std, RUSTC_BOOTSTRAP=1); zig (through cargo-zigbuild)
# brings musl 1.2.5's libc, its start files and libunwind, and links;
# `-C link-self-contained=no` makes rustc leave the start files to zig
# (build-std does not build rust's own self-contained copies).
#
# Knobs: STATIC_TARGETS (default: armv7-unknown-linux-musleabihf
# aarch64-unknown-linux-musl x86_64-unknown-linux-musl), TEST_TARGETS (for
# `test`, default the two ARM ones), DSS_TOOLS (where the venv and cargo-deb
# go, default target/tools), PROPTEST_CASES (200 under qemu).
set -euo pipefail
cd "$(dirname "$0")/.."
what=${1:-}
targets=${STATIC_TARGETS:-"armv7-unknown-linux-musleabihf aarch64-unknown-linux-musl x86_64-unknown-linux-musl"}
test_targets=${TEST_TARGETS:-"armv7-unknown-linux-musleabihf aarch64-unknown-linux-musl"}
tools=${DSS_TOOLS:-$PWD/target/tools}
# Pinned: zig is pre-1.0, and a new cargo-zigbuild may change its wrappers.
ziglang_version=0.17.1 cargo_zigbuild_version=0.24.1 cargo_deb_version=3.8.0
debian_packages=(rustc-web rust-web-src qemu-user qemu-user-binfmt python3-venv)

qemu() { case $1 in armv7-*) echo qemu-arm ;; aarch64-*) echo qemu-aarch64 ;; *) echo "" ;; esac; }
upper() { echo "$1" | tr 'a-z-' 'A-Z_'; }
setup() {
  bash scripts/install-packages.sh "${debian_packages[@]}"
  tools
}

tools() {
  # Debian's python3 for the venv: another python may lack ensurepip.
  [ -x "$tools/venv/bin/python3" ] || /usr/bin/python3 -m venv "$tools/venv"
  "$tools/venv/bin/pip" install --quiet --disable-pip-version-check \
    "ziglang==$ziglang_version" "cargo-zigbuild==$cargo_zigbuild_version"
  if ! "$tools/bin/cargo-deb" --version 2>/dev/null | grep -q " $cargo_deb_version"; then
    nice cargo install --quiet cargo-deb --version "$cargo_deb_version" --locked --root "$tools"
  fi
  # The end-to-end tests exec the ARM binary: let the kernel hand it to qemu.
  [ -e /proc/sys/fs/binfmt_misc/register ] || mount -t binfmt_misc binfmt_misc /proc/sys/fs/binfmt_misc
  for q in arm aarch64; do
    [ -e /proc/sys/fs/binfmt_misc/qemu-$q ] || cat /usr/lib/binfmt.d/qemu-$q.conf >/proc/sys/fs/binfmt_misc/register
  done
}

environment() {
  export RUSTC=/usr/bin/rustc RUSTDOC=/usr/bin/rustdoc RUSTC_BOOTSTRAP=1
  export CARGO_TARGET_DIR=$PWD/target/static
  # cargo-zigbuild runs `python3 -m ziglang`: name the venv's python without
  # putting the venv on PATH (the tests' python3 needs prometheus_client).
  export CARGO_ZIGBUILD_PYTHON_PATH=$tools/venv/bin/python3
  export RUSTDOCFLAGS="-C link-self-contained=no"
  # The libc crate (std's own copy too, which build-std compiles) describes
  # musl 1.1 unless told otherwise; zig links musl 1.2.5. On armv7 this is
  # what gives 64-bit time_t: with musl 1.1's 32-bit one, clock_gettime
  # fails with EOVERFLOW after 2038-01-19 and SystemTime::now() panics.
  export RUST_LIBC_UNSTABLE_MUSL_V1_2_3=1
  # Expected panics under qemu: symbolising a backtrace takes seconds.
  export RUST_BACKTRACE=0 PROPTEST_CASES=${PROPTEST_CASES:-200}
  local t q
  for t in $targets $test_targets; do
    export "CARGO_TARGET_$(upper "$t")_RUSTFLAGS=-C link-self-contained=no"
    q=$(qemu "$t")
    if [ -n "$q" ]; then export "CARGO_TARGET_$(upper "$t")_RUNNER=$q"; fi
  done
  zigbuild=$tools/venv/bin/cargo-zigbuild
  [ -x "$zigbuild" ] || { echo "no $zigbuild: run scripts/static.sh setup first" >&2; exit 1; }
  local rv sv
  rv=$("$RUSTC" -V | awk '{print $2}')
  sv=$(readlink /usr/lib/rustlib/src/rust | sed -n 's/.*rustc-\([0-9.]*\).*/\1/p')
  [ "$rv" = "$sv" ] || { echo "rust-web-src ($sv) does not match rustc-web ($rv)" >&2; exit 1; }
}

binary() { echo "$CARGO_TARGET_DIR/$1/release/dataservice-sync"; }

target_flags() { local t; for t in "$@"; do printf -- '--target\n%s\n' "$t"; done; }

build() {
  local t b started=$SECONDS
  # All targets in one cargo run: the build scripts and proc macros are
  # compiled once, and both cores stay busy across the targets.
  # The gateway build: no `demo` feature, so no simulated peers inside;
  # std without its `backtrace` feature, which would link a DWARF reader
  # (gimli, addr2line, miniz_oxide: about 160 KB on armv7) only to print a
  # backtrace on a panic. A panic still prints its message and location.
  # shellcheck disable=SC2046
  "$zigbuild" zigbuild -Zbuild-std=std,panic_abort -Zbuild-std-features= \
    $(target_flags $targets) --release --locked -p dataservice-sync --no-default-features
  for t in $targets; do
    b=$(binary "$t")
    # Static: no program interpreter, no shared library needed.
    if readelf -lW "$b" | grep -q INTERP || readelf -dW "$b" | grep -q NEEDED; then
      echo "$b is not static" >&2
      exit 1
    fi
    echo "size $t: $(stat -c %s "$b") bytes (static, stripped)"
  done
  echo "built in $((SECONDS - started)) s"
}

test_all() {
  echo "=== the whole test suite for: $test_targets (ARM under qemu-user)"
  # Examples are not tests; debug info only slows the links, since nothing
  # reads it under qemu.
  # shellcheck disable=SC2046
  CARGO_PROFILE_DEV_DEBUG=0 "$zigbuild" test -Zbuild-std=std,panic_unwind \
    $(target_flags $test_targets) --workspace --lib --bins --tests --locked
}

# The shipped ARM binaries themselves (release, static, no doubles inside):
# they start under qemu and sync the simulated peers, which run natively
# (`dataservice-sync-peers`, from the sim crate).
run_demo() {
  local t b peers dir
  # The peers run natively: the host's own toolchain and target directory.
  env -u RUSTC -u RUSTDOC -u RUSTC_BOOTSTRAP -u RUSTDOCFLAGS CARGO_TARGET_DIR="$PWD/target" \
    cargo build --quiet --locked -p dataservice-sync-sim --bin dataservice-sync-peers
  peers=$PWD/target/debug/dataservice-sync-peers
  for t in $targets; do
    [ -n "$(qemu "$t")" ] || continue
    b=$(binary "$t")
    echo "=== $t: $("$(qemu "$t")" "$b" --version)"
    dir=$(mktemp -d)
    "$peers" --dir "$dir" --devices 2 --tags 5 --timeout 60 -- \
      "$(qemu "$t")" "$b" --interval 0.5 --status-listen off
    rm -rf "$dir"
  done
}

case $what in
  setup) setup ;;
  tools) tools ;;
  build) environment; build ;;
  test) environment; test_all ;;
  run-demo) environment; run_demo ;;
  packages) printf '%s\n' "${debian_packages[@]}" ;;
  env)
    environment
    declare -px RUSTC RUSTDOC RUSTC_BOOTSTRAP CARGO_TARGET_DIR CARGO_ZIGBUILD_PYTHON_PATH RUSTDOCFLAGS
    declare -px | grep '^declare -x CARGO_TARGET_[A-Z0-9_]*_\(RUSTFLAGS\|RUNNER\)='
    echo "DSS_TOOLS_BIN=$tools/bin"
    ;;
  *) sed -n '2,25p' "$0"; exit 2 ;;
esac
