#!/usr/bin/env bash
# Builds and runs the showcase: a small model assembled from dskit's layers, run on
# the default (SIMD) backend and the scalar reference. Installs missing Debian packages first.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
source scripts/setup.sh
dskit_setup

build=${BUILD_DIR:-build/showcase}
# -march=native is for this demo binary only; the library never requires it.
cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=Release -DDSKIT_BUILD_TESTS=OFF -DDSKIT_BUILD_BENCHMARKS=OFF \
      -DDSKIT_BUILD_EXAMPLES=ON -DDSKIT_ENABLE_CUDA=OFF -DDSKIT_NATIVE_ARCH=ON >/dev/null
cmake --build "$build" -j "$(dskit_jobs)" --target dskit_showcase
"$build/examples/dskit_showcase" "$@"
