#!/usr/bin/env bash
# Runs every fuzz target (tests/fuzz) for SECONDS each (default 30), seeded
# from tests/fixtures and tests/fuzz/seeds, and prints libFuzzer's
# executions and coverage. Installs cargo-fuzz if missing. Uses the nightly
# toolchain when rustup has one, else stable with RUSTC_BOOTSTRAP=1 (the
# sanitizer flags are unstable options; both ship the ASan runtime).
#   bash scripts/fuzz.sh [SECONDS] [TARGET...]
set -euo pipefail
cd "$(dirname "$0")/.."

seconds=${1:-30}
shift || true
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(polled_values flat_object ipc_response http_response spool_record config_file)

command -v cargo-fuzz >/dev/null || cargo install cargo-fuzz --locked
toolchain=()
if rustup toolchain list 2>/dev/null | grep -q '^nightly'; then
  toolchain=(+nightly)
else
  export RUSTC_BOOTSTRAP=1
fi

fixtures=tests/fixtures/polled-values
for target in "${targets[@]}"; do
  corpus=target/fuzz-corpus/$target
  mkdir -p "$corpus"
  case $target in
    polled_values) cp "$fixtures"/*.json "$corpus"/ ;;
    # Objects of scalars: tags and Data-Service results.
    flat_object) cp "$fixtures"/*.json tests/fuzz/seeds/ipc_response/* "$corpus"/ ;;
    *) cp tests/fuzz/seeds/"$target"/* "$corpus"/ ;;
  esac
  echo "=== fuzz $target for ${seconds}s"
  log=target/fuzz-$target.log
  if ! cargo "${toolchain[@]}" fuzz run --fuzz-dir tests/fuzz "$target" "$corpus" -- \
      -max_total_time="$seconds" -print_final_stats=1 -max_len=65536 >"$log" 2>&1; then
    tail -n 60 "$log"
    echo "fuzz target $target failed; the crashing input is in tests/fuzz/artifacts/$target/" >&2
    exit 1
  fi
  grep -E '^#[0-9]+ *DONE|stat::number_of_executed_units|cov: ' "$log" | tail -n 3
done
