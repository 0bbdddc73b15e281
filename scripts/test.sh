#!/usr/bin/env bash
# Builds and runs dskit's whole test suite (installs missing Debian packages first).
# Usage: bash scripts/test.sh            (build dir: build/test; BUILD_DIR=... to change)
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
source scripts/setup.sh
dskit_setup doctest-dev

build=${BUILD_DIR:-build/test}
# DSKIT_CMAKE_ARGS: extra CMake arguments, split like a shell command line (quotes group words).
eval "extra=(${DSKIT_CMAKE_ARGS:-})"
cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=Release -DDSKIT_BUILD_TESTS=ON -DDSKIT_BUILD_BENCHMARKS=OFF \
      -DDSKIT_BUILD_EXAMPLES=OFF -DDSKIT_ENABLE_CUDA=OFF -DDSKIT_WERROR=ON "${extra[@]}"
cmake --build "$build" -j "$(dskit_jobs)"
cd "$build"
ctest --output-on-failure -j "$(dskit_jobs)" ${CTEST_ARGS:-}
