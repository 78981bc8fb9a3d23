#!/usr/bin/env bash
# Smoke run of every fuzz target: build once, then fuzz each for a few seconds from its checked-in corpus.
# Fails when any target crashes. Usage: fuzz/smoke.sh [SECONDS_PER_TARGET] (default 10).
#
# Works on the stable toolchain: RUSTC_BOOTSTRAP=1 lets stable rustc take the -Z flags cargo-fuzz passes
# (sanitizer, coverage passes). It changes nothing on nightly.
set -euo pipefail
cd "$(dirname "$0")"

SECONDS_PER_TARGET="${1:-10}"
CARGO_FUZZ_VERSION="0.13.2"
# Debug assertions on: overflow and slice checks find more than a silent wrap.
BUILD_FLAGS=(--debug-assertions)

export RUSTC_BOOTSTRAP=1

if ! cargo fuzz --version >/dev/null 2>&1; then
  echo "== installing cargo-fuzz ${CARGO_FUZZ_VERSION}"
  cargo install cargo-fuzz --locked --version "${CARGO_FUZZ_VERSION}"
fi

echo "== building fuzz targets"
cargo fuzz build "${BUILD_FLAGS[@]}"
# The binaries are run directly rather than through `cargo fuzz run`, which would re-check the build for
# every target: one build, then only fuzzing.
host="$(rustc -vV | sed -n 's/^host: //p')"
bin_dir="target/${host}/release"

# New inputs go to a scratch corpus so the checked-in seeds stay as committed.
scratch="$(mktemp -d)"
trap 'rm -rf "$scratch"' EXIT

passed=0
failed=0
failed_targets=()
for target in $(cargo fuzz list); do
  echo "== ${target}: ${SECONDS_PER_TARGET}s"
  mkdir -p "corpus/${target}" "${scratch}/${target}" "artifacts/${target}"
  if "${bin_dir}/${target}" "${scratch}/${target}" "corpus/${target}" -artifact_prefix="artifacts/${target}/" \
    -max_total_time="${SECONDS_PER_TARGET}" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1; then
    passed=$((passed + 1))
  else
    failed=$((failed + 1))
    failed_targets+=("${target}")
  fi
done

if ((failed > 0)); then
  echo "crashing targets: ${failed_targets[*]} (inputs under fuzz/artifacts/; see fuzz/README.md to reproduce)" >&2
fi
echo "fuzz: ${passed} passed, ${failed} failed"
((failed == 0))
