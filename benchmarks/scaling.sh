#!/usr/bin/env bash
# Epoch time against the number of interactions (synthetic graphs, 1e5 to 1e7) and the thread count (1, 2):
# bench_epoch's BM_epoch_synthetic series at OMP_NUM_THREADS=1 and 2, then the plot docs/img/perf_scaling.png
# and a Markdown table (OUT_DIR/scaling.md).
#
#   benchmarks/scaling.sh [OUT_DIR]        (~10 min on the 2-core development machine; run it on a quiet machine)
# Env: BUILD_DIR (/tmp/ans_bench_build), THREADS_LIST ("1 2"), ANS_BENCH_SYN_BATCHES (200 MF batches per size, extrapolated beyond; 0 = full epochs),
#      ANS_BENCH_LGCN_BATCHES (8: LightGCN batches per size, extrapolated), PYTHON (/usr/bin/python3: matplotlib).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BUILD_DIR="${BUILD_DIR:-/tmp/ans_bench_build}"
OUT="${1:-$BUILD_DIR/scaling}"
PY="${PYTHON:-/usr/bin/python3}"
export ANS_BENCH_SYN_BATCHES="${ANS_BENCH_SYN_BATCHES:-200}" ANS_BENCH_LGCN_BATCHES="${ANS_BENCH_LGCN_BATCHES:-8}"
cmake -S "$ROOT" -B "$BUILD_DIR" -DCMAKE_BUILD_TYPE=Release \
  -DANS_BUILD_TESTS=OFF -DANS_BUILD_EXAMPLES=OFF -DANS_BUILD_BENCHMARKS=ON >/dev/null
cmake --build "$BUILD_DIR" -j2 --target bench_epoch >/dev/null
mkdir -p "$OUT"
echo "load before: $(uptime)" | tee "$OUT/machine.txt"
for t in ${THREADS_LIST:-1 2}; do
  OMP_NUM_THREADS=$t "$BUILD_DIR/benchmarks/bench_epoch" --benchmark_filter=BM_epoch_synthetic \
    --benchmark_out="$OUT/scaling_${t}t.json" --benchmark_out_format=json
done
echo "load after: $(uptime)" | tee -a "$OUT/machine.txt"
"$PY" "$ROOT/benchmarks/plot_scaling.py" "$OUT" --png "$ROOT/docs/img/perf_scaling.png" --md "$OUT/scaling.md"
