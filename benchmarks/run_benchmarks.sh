#!/usr/bin/env bash
# Builds the benchmark suites (Release) and runs every one of them, writing NAME.json per suite.
#
# Usage: benchmarks/run_benchmarks.sh [OUT_DIR]
#   OUT_DIR            where the JSON results go (default: <build dir>/results)
# Environment:
#   BUILD_DIR          build folder (default: /tmp/ans_bench_build)
#   ANS_DATA_DIR       datasets (default: ../shared/data relative to the repository root)
#   OMP_NUM_THREADS    threads for the OpenMP kernels (default: 2)
#   MIN_TIME           --benchmark_min_time in seconds (default: 0.2; keeps the whole run under ~5 min)
#   SUITES             space-separated suite names (default: every benchmarks/bench_*.cpp)
#   JOBS               parallel build jobs (default: 2)
#   SCALING=1          also run propagation and the objective step at OMP_NUM_THREADS=1 (scaling_1t.json)
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BUILD_DIR="${BUILD_DIR:-/tmp/ans_bench_build}"
OUT_DIR="${1:-$BUILD_DIR/results}"
export ANS_DATA_DIR="${ANS_DATA_DIR:-$ROOT/../shared/data}"
export OMP_NUM_THREADS="${OMP_NUM_THREADS:-2}"
MIN_TIME="${MIN_TIME:-0.2}"
JOBS="${JOBS:-2}"

cmake -S "$ROOT" -B "$BUILD_DIR" -DCMAKE_BUILD_TYPE=Release \
  -DANS_BUILD_TESTS=OFF -DANS_BUILD_EXAMPLES=OFF -DANS_BUILD_BENCHMARKS=ON >/dev/null
cmake --build "$BUILD_DIR" -j"$JOBS"

if [[ -z "${SUITES:-}" ]]; then
  SUITES=""
  for f in "$ROOT"/benchmarks/bench_*.cpp; do SUITES+=" $(basename "$f" .cpp)"; done
fi

mkdir -p "$OUT_DIR"
{
  echo "date: $(date -Is)"
  echo "host: $(uname -n)"
  lscpu | grep -E '^(Model name|CPU\(s\)|Thread|Core|Socket)' || true
  echo "OMP_NUM_THREADS=$OMP_NUM_THREADS ANS_DATA_DIR=$ANS_DATA_DIR MIN_TIME=$MIN_TIME"
} | tee "$OUT_DIR/machine.txt"

for name in $SUITES; do
  exe="$BUILD_DIR/benchmarks/$name"
  [[ -x "$exe" ]] || { echo "missing $exe" >&2; exit 1; }
  echo
  echo "=== $name  (load: $(uptime | sed 's/.*load average: //'))" | tee -a "$OUT_DIR/machine.txt"
  "$exe" --benchmark_format=console --benchmark_out="$OUT_DIR/$name.json" --benchmark_out_format=json \
    --benchmark_min_time="$MIN_TIME"
done

if [[ "${SCALING:-0}" == 1 ]]; then
  # Thread scaling: Google Benchmark's CPU time is the main thread's, so compare real time across runs.
  for t in 1 "$OMP_NUM_THREADS"; do
    echo
    echo "=== scaling, OMP_NUM_THREADS=$t  (load: $(uptime | sed 's/.*load average: //'))" | tee -a "$OUT_DIR/machine.txt"
    OMP_NUM_THREADS=$t "$BUILD_DIR/benchmarks/bench_propagation" --benchmark_filter='propagation' \
      --benchmark_format=console --benchmark_out="$OUT_DIR/scaling_prop_${t}t.json" --benchmark_out_format=json \
      --benchmark_min_time="$MIN_TIME"
    OMP_NUM_THREADS=$t "$BUILD_DIR/benchmarks/bench_sampling" --benchmark_filter='objective|sample_batch' \
      --benchmark_format=console --benchmark_out="$OUT_DIR/scaling_obj_${t}t.json" --benchmark_out_format=json \
      --benchmark_min_time="$MIN_TIME"
  done
fi
echo
echo "results in $OUT_DIR"
