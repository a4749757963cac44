#!/usr/bin/env bash
# The README's main command: installs what is missing, builds the examples, runs the main job (ans-train:
# ANS on the built-in synthetic dataset, or any dataset with --dataset NAME --path DIR).
# Extra arguments are passed to the main program.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/deps.sh
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release -DANS_BUILD_TESTS=OFF -DANS_BUILD_BENCHMARKS=OFF
cmake --build build -j"$(nproc)" --target ans-train ans-stats
./build/examples/ans-train "$@"
