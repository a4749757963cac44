#!/usr/bin/env bash
# What the compiler flags cost a consumer (issue 14, "fast by default"): ans-train built twice from the same
# sources, once as the project builds it (-O3 -march=native, ANS_NATIVE=ON: what `ans::native` adds to a
# consumer's target) and once as a consumer's plain Release target (-O3, no -march: ANS_NATIVE=OFF). Both run
# the same training epochs on Amazon-Beauty, alternating, REPS times each; prints the median s/epoch and the
# ratio, measured in one run.
#
#   ANS_DATA_DIR=../shared/data benchmarks/native_flags.sh [OUT_DIR]
# Env: REPS (3), THREADS (1), CASES (default: the three below), KEEP_BUILDS (reuse /tmp builds when present).
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
DATA="${ANS_DATA_DIR:-$ROOT/../shared/data}"
OUT="${1:-/tmp/ans_native_flags}"
REPS="${REPS:-3}"
THREADS="${THREADS:-1}"
mkdir -p "$OUT"
for v in native plain; do
  B="/tmp/ans_flags_$v"
  flag=ON; [[ $v == plain ]] && flag=OFF
  if [[ -z "${KEEP_BUILDS:-}" || ! -x "$B/examples/ans-train" ]]; then
    cmake -S "$ROOT" -B "$B" -DCMAKE_BUILD_TYPE=Release -DANS_NATIVE=$flag -DANS_BUILD_TESTS=OFF \
      -DANS_BUILD_BENCHMARKS=OFF > /dev/null
    cmake --build "$B" -j"$(nproc)" --target ans-train > /dev/null
  fi
done
COMMON="--dataset amazon_beauty --path $DATA --epoch 2 --eval_every 1000 --early_stop 0 --valid_ratio 0 --quiet \
--num_workers $THREADS --emb_size 64 --batch_size 2048"
declare -A CASE=(
  [mf_ans]="--model_name ANS --encoder mf --num_neg 16"
  [bprmf]="--model_name BPRMF --encoder mf"
  [lgcn_ans]="--model_name ANS --encoder lightgcn --n_layers 3 --num_neg 16 --max_batches 10"
)
CASES="${CASES:-mf_ans bprmf lgcn_ans}"
for c in $CASES; do
  for r in $(seq 1 "$REPS"); do
    for v in native plain; do
      # shellcheck disable=SC2086
      /tmp/ans_flags_$v/examples/ans-train ${CASE[$c]} $COMMON --json "$OUT/${c}_${v}_$r.json" > /dev/null
    done
  done
done
/usr/bin/python3 - "$OUT" "$REPS" $CASES <<'PY'
import json, statistics, sys
out, reps, cases = sys.argv[1], int(sys.argv[2]), sys.argv[3:]
print("| case | -march=native s/epoch | plain -O3 s/epoch | plain / native |")
print("|---|---|---|---|")
for c in cases:
    med = {}
    for v in ("native", "plain"):
        xs = [json.load(open(f"{out}/{c}_{v}_{r}.json"))["train_seconds_per_epoch"] for r in range(1, reps + 1)]
        med[v] = statistics.median(xs)
    print(f"| {c} | {med['native']:.3f} | {med['plain']:.3f} | {med['plain'] / med['native']:.2f}x |")
PY
