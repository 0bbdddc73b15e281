#!/usr/bin/env bash
# Builds dskit_bench (with -march=native) and prints its results as a table.
# Usage: bash scripts/bench.sh [google-benchmark flags, e.g. --benchmark_filter=kernels]
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
source scripts/setup.sh
dskit_setup libbenchmark-dev python3

build=${BUILD_DIR:-build/bench}
cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=Release -DDSKIT_BUILD_TESTS=OFF -DDSKIT_BUILD_BENCHMARKS=ON \
      -DDSKIT_BUILD_EXAMPLES=OFF -DDSKIT_NATIVE_ARCH=ON ${DSKIT_CMAKE_ARGS:-} >/dev/null
cmake --build "$build" -j "$(dskit_jobs)" --target dskit_bench
out=${BENCH_JSON:-$build/bench.json}
"$build/benchmarks/dskit_bench" --benchmark_format=json --benchmark_out="$out" --benchmark_out_format=json "$@" >/dev/null
python3 benchmarks/table.py "$out"
