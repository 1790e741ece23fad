#!/usr/bin/env bash
# Bounded fuzzing of every parser of untrusted input (docs/fuzzing.md):
# builds the cargo-fuzz project in fuzz/ and runs each target for
# SECONDS_PER_TARGET seconds (default 20), starting from the committed seeds
# in fuzz/corpus/<target>/. Inputs the fuzzer finds go to fuzz/corpus-run/
# and crashes to fuzz/artifacts/ (both git-ignored), so a run never dirties
# the tree. Exits non-zero if any target crashed, hung or ran out of memory,
# printing the reproducer's path. Needs the nightly toolchain (an error if
# missing, not a skip); installs cargo-fuzz if it is not there.
set -euo pipefail
cd "$(dirname "$0")/../fuzz"

seconds=${1:-20}
fail() { echo "scripts/fuzz.sh: $*" >&2; exit 1; }

[[ $seconds =~ ^[1-9][0-9]*$ ]] || fail "SECONDS_PER_TARGET must be a positive integer (got '$seconds')"
command -v rustup >/dev/null || fail "rustup is required (the fuzz targets need the nightly toolchain)"
rustup run nightly rustc --version >/dev/null 2>&1 ||
  fail "the nightly toolchain is required: rustup toolchain install nightly"
if ! cargo +nightly fuzz --version >/dev/null 2>&1; then
  echo "== installing cargo-fuzz"
  cargo install cargo-fuzz --locked
fi

# No sanitizer: switchboard forbids unsafe code, so AddressSanitizer would
# mostly slow the run down; debug assertions (overflow checks) stay on.
fuzz=(cargo +nightly fuzz)
opts=(--sanitizer none)

echo "== building fuzz targets"
"${fuzz[@]}" build "${opts[@]}"

failed=()
for target in $("${fuzz[@]}" list); do
  [ -d "corpus/$target" ] || fail "no seed corpus at fuzz/corpus/$target"
  # Reproducers of an earlier run are cleared, so every path printed below
  # comes from this run; the inputs found so far are kept.
  rm -rf "artifacts/$target"
  mkdir -p "corpus-run/$target" "artifacts/$target"
  echo "== fuzzing $target for ${seconds}s"
  # The first corpus directory receives new inputs; the seeds are only read.
  if ! "${fuzz[@]}" run "${opts[@]}" "$target" "corpus-run/$target" "corpus/$target" -- \
    -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 \
    -artifact_prefix="artifacts/$target/" -print_final_stats=1 >"artifacts/$target.log" 2>&1; then
    tail -n 40 "artifacts/$target.log" >&2
    failed+=("$target")
    for reproducer in "artifacts/$target"/*; do
      [ -e "$reproducer" ] || continue
      echo "scripts/fuzz.sh: $target failed; reproducer: fuzz/$reproducer" >&2
      echo "  reproduce: (cd fuzz && cargo +nightly fuzz run --sanitizer none $target $reproducer)" >&2
    done
  else
    grep -E '^stat::number_of_executed_units' "artifacts/$target.log" || true
  fi
done

[ ${#failed[@]} -eq 0 ] || fail "fuzz targets failed: ${failed[*]}"
echo "== fuzzing: every target ran ${seconds}s without a failure"
