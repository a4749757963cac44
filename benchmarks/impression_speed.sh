#!/usr/bin/env bash
# Issue 16's speed target: an impression-mode epoch of ANS with exposure candidates against the same epoch with
# uniform candidates, per training pair (both train on the same (user, clicked item) pairs of ML_100kCTR).
# The two modes run interleaved, REPS times each, in one invocation (this machine is shared and noisy); the
# ratio of the medians of their median epoch times is printed.
#
#   benchmarks/impression_speed.sh [REPS (5)] [EPOCHS (5)] [OUT (benchmarks/results/issue16/speed.md)]
set -euo pipefail
cd "$(dirname "$0")/.."
REPS="${1:-5}"
EPOCHS="${2:-5}"
OUT="${3:-benchmarks/results/issue16/speed.md}"
BIN="${ANS_TRAIN:-build/examples/ans-train}"
DATA="${ANS_DATA_DIR:-../shared/data}"
THREADS="${THREADS:-2}"
mkdir -p "$(dirname "$OUT")" build/data
[ -x "$BIN" ] || { cmake -S . -B build -DCMAKE_BUILD_TYPE=Release > /dev/null; cmake --build build -j"$(nproc)" --target ans-train; }
[ -f build/data/ML_100kCTR/train.csv ] || TZ=UTC python3 scripts/make_ml100k_ctr.py --inter "$DATA/ml-100k/ml-100k.inter" --out build/data/ML_100kCTR > /dev/null
tmp=$(mktemp -d /tmp/ans_impspeed.XXXXXX)
trap 'rm -rf "$tmp"' EXIT
for r in $(seq 1 "$REPS"); do
  for c in exposure uniform; do
    "$BIN" --model_name ANS --emb_size 64 --lr 1e-3 --l2 0 --loss_n BPR --dataset ML_100kCTR --path build/data \
      --metric NDCG,HR --topk 1,2,3,5,10 --main_metric NDCG@2 --model_mode Impression --epoch "$EPOCHS" \
      --eval_every 1000000 --early_stop 0 --num_workers "$THREADS" --impression_candidates "$c" --quiet \
      --json "$tmp/${c}_$r.json" > /dev/null
  done
done
python3 - "$tmp" "$REPS" "$EPOCHS" "$THREADS" > "$OUT" <<'EOF'
import json, sys
d, reps, epochs, threads = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
med = lambda v: sorted(v)[len(v) // 2]
res = {}
for c in ("exposure", "uniform"):
    runs = [json.load(open(f"{d}/{c}_{r}.json")) for r in range(1, reps + 1)]
    res[c] = ([r["train_seconds_per_epoch"] for r in runs], runs[0]["train_pairs_per_epoch"], runs[0]["uniform_candidate_fraction"])
print(f"ANS on ML_100kCTR, impression mode, K = 16, batch 256, {threads} threads, {epochs} epochs per run, {reps} runs per mode "
      "interleaved (benchmarks/impression_speed.sh); s/epoch = the median over runs of each run's median epoch.\n")
print("| candidates | training pairs | uniform slots | s/epoch (runs) | median s/epoch | ns per pair |")
print("|---|---|---|---|---|---|")
for c, (secs, pairs, uf) in res.items():
    print(f"| {c} | {pairs} | {100 * uf:.1f}% | {', '.join(f'{s:.3f}' for s in secs)} | {med(secs):.3f} | {1e9 * med(secs) / pairs:.0f} |")
print(f"\nexposure / uniform time per pair: {med(res['exposure'][0]) / med(res['uniform'][0]):.3f}")
EOF
cat "$OUT"
