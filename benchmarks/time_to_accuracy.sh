#!/usr/bin/env bash
# Time to accuracy, in one run: training seconds until test Recall@20 first reaches TARGET on Gowalla (the
# LightGCN protocol: full ranking, no validation split; a speed measurement, not a model selection), for
#   ours: BPR-MF with lazy Adam (lr 1e-3, batch 2048, λ = 0) and with hogwild_sgd (lr 0.01, l2 0.01: implicit's
#         learning rate and regularisation), evaluated after every epoch;
#   implicit 0.7.3 BPR (factors 64, lr 0.01, reg 0.01), evaluated every IMPLICIT_EVAL_EVERY epochs (its numpy
#         evaluation takes about a minute), when IMPLICIT_PATH points at a build (docs/performance.md).
# Evaluation time is excluded on both sides. Default TARGET 0.086: implicit's Recall@20 after 100 epochs.
#
#   BUILD_DIR=build ANS_DATA_DIR=../shared/data IMPLICIT_PATH=/tmp/implicit-src benchmarks/time_to_accuracy.sh [OUT]
#
# Env: THREADS (2), TARGET (0.086), EPOCHS (40, ours), IMPLICIT_EPOCHS (100), IMPLICIT_EVAL_EVERY (10).
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
BUILD_DIR="${BUILD_DIR:-$ROOT/build}"
DATA="${ANS_DATA_DIR:-$ROOT/../shared/data}"
OUT="${1:-/tmp/ans_tta}"
THREADS="${THREADS:-2}"
TARGET="${TARGET:-0.086}"
EPOCHS="${EPOCHS:-40}"
IEPOCHS="${IMPLICIT_EPOCHS:-100}"
IEVERY="${IMPLICIT_EVAL_EVERY:-10}"
PY="${PYTHON:-/usr/bin/python3}"
mkdir -p "$OUT"
echo "load before: $(uptime)" | tee "$OUT/machine.txt"
COMMON=(--dataset gowalla --path "$DATA" --epoch "$EPOCHS" --eval_every 1 --early_stop 0 --valid_ratio 0 --quiet
        --batch_size 2048 --reg_weight 0 --metric Recall --topk 20 --main_metric Recall@20 --num_workers "$THREADS")
OMP_NUM_THREADS=$THREADS "$BUILD_DIR/examples/ans-train" --model_name BPRMF --optimizer lazy_adam --lr 1e-3 \
  "${COMMON[@]}" --log "$OUT/ours_lazy.jsonl" --json "$OUT/ours_lazy.json" > "$OUT/ours_lazy.log" 2>&1
OMP_NUM_THREADS=$THREADS "$BUILD_DIR/examples/ans-train" --model_name BPRMF --optimizer hogwild_sgd --lr 0.01 --l2 0.01 \
  "${COMMON[@]}" --log "$OUT/ours_hogwild.jsonl" --json "$OUT/ours_hogwild.json" > "$OUT/ours_hogwild.log" 2>&1
if [ -n "${IMPLICIT_PATH:-}" ]; then
  at=$(seq -s, "$IEVERY" "$IEVERY" "$IEPOCHS")
  IMPLICIT_PATH="$IMPLICIT_PATH" "$PY" "$ROOT/benchmarks/implicit_bpr.py" --data "$DATA/gowalla" --threads "$THREADS" \
    --epochs "$IEPOCHS" --eval_at "$at" --json "$OUT/implicit.json" > "$OUT/implicit.log" 2>&1
else
  echo "implicit: skipped (set IMPLICIT_PATH to an implicit 0.7.3 build, docs/performance.md)"
fi
echo "load after: $(uptime)" | tee -a "$OUT/machine.txt"
"$PY" - "$OUT" "$TARGET" "$THREADS" <<'PYEOF'
import json, os, sys
out, target, threads = sys.argv[1], float(sys.argv[2]), sys.argv[3]
rows = []
for tag, name in (("ours_lazy", "ours, BPR-MF lazy Adam (lr 1e-3)"), ("ours_hogwild", "ours, BPR-MF hogwild_sgd (lr 0.01)")):
    cum, hit, best = 0.0, None, 0.0
    for line in open(f"{out}/{tag}.jsonl"):
        r = json.loads(line)
        cum += r["seconds"]
        rec = r.get("valid_Recall@20")
        if rec is None: continue
        best = max(best, rec)
        if hit is None and rec >= target: hit = (r["epoch"], cum, rec)
    rows.append((name, hit, best, cum))
if os.path.exists(f"{out}/implicit.json"):
    d = json.load(open(f"{out}/implicit.json"))
    hit, best = None, 0.0
    for e in d["evals"]:
        best = max(best, e["recall@20"])
        if hit is None and e["recall@20"] >= target: hit = (e["epoch"], e["cum_train_seconds"], e["recall@20"])
    rows.append(("implicit 0.7.3 BPR (lr 0.01, reg 0.01)", hit, best, sum(d["epoch_seconds"])))
print(f"\n| trainer ({threads} threads) | first epoch with Recall@20 >= {target} | train seconds to it | Recall@20 there | best Recall@20 | train seconds, all epochs |")
print("|---|---|---|---|---|---|")
for name, hit, best, total in rows:
    if hit: print(f"| {name} | {hit[0]} | {hit[1]:.2f} | {hit[2]:.4f} | {best:.4f} | {total:.1f} |")
    else: print(f"| {name} | not reached | - | - | {best:.4f} | {total:.1f} |")
PYEOF
