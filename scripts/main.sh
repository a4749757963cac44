#!/usr/bin/env bash
# The README's main command: installs what is missing, builds the examples, runs the main job.
# Extra arguments are passed to the main program.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/deps.sh
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release -DANS_BUILD_TESTS=OFF -DANS_BUILD_BENCHMARKS=OFF
cmake --build build -j"$(nproc)" --target ans-stats
./build/examples/ans-stats "$@"
