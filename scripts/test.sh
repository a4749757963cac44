#!/usr/bin/env bash
# The README's test command: installs what is missing, builds everything in build/, runs the whole suite.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/deps.sh
: "${ANS_DATA_DIR:=$PWD/../shared/data}"
: "${ANS_GOLDEN_DIR:=$PWD/../shared/golden}"
export ANS_DATA_DIR ANS_GOLDEN_DIR
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release -DANS_BUILD_TESTS=ON -DANS_BUILD_EXAMPLES=ON -DANS_BUILD_BENCHMARKS=ON
cmake --build build -j"$(nproc)"
ctest --test-dir build --output-on-failure -j"$(nproc)"
