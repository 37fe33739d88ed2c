#!/usr/bin/env bash
# Cross-builds dataservice-sync for the gateways and runs the whole test
# suite (unit, end-to-end, doc) under qemu-user, on Debian 12 x86_64 without
# Docker or rustup targets: Debian's rustc-web with its exact library source
# builds std for each target (cargo -Zbuild-std, RUSTC_BOOTSTRAP=1); the
# machine's cargo drives it; Debian's cross gcc links; qemu-user runs it;
# binfmt_misc lets the end-to-end tests exec the ARM binary. Needs root.
#
#   scripts/arm-cross.sh [test|size|all]     (default: all)
#   scripts/arm-cross.sh packages            (the Debian packages it needs)
#
# Prints the stripped size of the release binary for each target.
# Knobs: ARM_TARGETS (default "armv7-unknown-linux-gnueabihf aarch64-unknown-linux-gnu").
set -euo pipefail
cd "$(dirname "$0")/.."
what=${1:-all}
targets=${ARM_TARGETS:-"armv7-unknown-linux-gnueabihf aarch64-unknown-linux-gnu"}

gnu() { case $1 in armv7-*) echo arm-linux-gnueabihf ;; aarch64-*) echo aarch64-linux-gnu ;; esac; }
qemu() { case $1 in armv7-*) echo arm ;; aarch64-*) echo aarch64 ;; esac; }
debarch() { case $1 in armv7-*) echo armhf ;; aarch64-*) echo arm64 ;; esac; }

pkgs=(rustc-web rust-web-src qemu-user qemu-user-binfmt)
for t in $targets; do pkgs+=("gcc-$(gnu "$t")" "libc6-dev-$(debarch "$t")-cross"); done
if [ "$what" = packages ]; then
  printf '%s\n' "${pkgs[@]}"
  exit 0
fi
bash scripts/install-packages.sh "${pkgs[@]}" >/dev/null

export RUSTC=/usr/bin/rustc RUSTDOC=/usr/bin/rustdoc RUSTC_BOOTSTRAP=1
export CARGO_TARGET_DIR=target/arm-cross
# Expected panics under qemu: symbolising a backtrace takes seconds.
export RUST_BACKTRACE=0
# The proptests run 2,000 cases each natively; under qemu the full count took
# over 6 minutes per target, so the ARM run checks 200.
export PROPTEST_CASES=${PROPTEST_CASES:-200}
rustc_version=$("$RUSTC" -V | awk '{print $2}')
source_version=$(readlink /usr/lib/rustlib/src/rust | sed -n 's/.*rustc-\([0-9.]*\).*/\1/p')
if [ "$rustc_version" != "$source_version" ]; then
  echo "rust-web-src ($source_version) does not match rustc-web ($rustc_version)" >&2
  exit 1
fi
echo "cross compiler: $("$RUSTC" -V)"

# The end-to-end tests exec the ARM binary: let the kernel hand it to qemu.
if [ ! -e /proc/sys/fs/binfmt_misc/register ]; then
  mount -t binfmt_misc binfmt_misc /proc/sys/fs/binfmt_misc
fi
for q in arm aarch64; do
  [ -e /proc/sys/fs/binfmt_misc/qemu-$q ] || cat /usr/lib/binfmt.d/qemu-$q.conf > /proc/sys/fs/binfmt_misc/register
done

for t in $targets; do
  export QEMU_LD_PREFIX=/usr/$(gnu "$t")
  if [ "$what" = test ] || [ "$what" = all ]; then
    echo "=== $t: whole test suite under qemu-$(qemu "$t")"
    cargo test -Zbuild-std=std,panic_unwind --target "$t" --workspace --locked
  fi
  if [ "$what" = size ] || [ "$what" = all ]; then
    echo "=== $t: release binary"
    cargo build -Zbuild-std=std,panic_abort --target "$t" --release --locked -p dataservice-sync
    bin=$CARGO_TARGET_DIR/$t/release/dataservice-sync
    file "$bin" 2>/dev/null || true
    echo "size $t: $(stat -c %s "$bin") bytes (stripped)"
    "$bin" --version
  fi
done
