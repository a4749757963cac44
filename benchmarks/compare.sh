#!/usr/bin/env bash
# One command: ans-train (C++, float, OpenMP) vs the PyTorch reference (benchmarks/reference/ans_ref.py) on the
# same data and hyper-parameters, MF-ANS and LightGCN-ANS (L=3), amazon_beauty and gowalla, 1 epoch each.
# MF-ANS runs twice on the C++ side: ans-train's default optimiser (lazy_adam: Adam moments and update only on
# the rows a batch touches) and --optimizer adam (dense Adam over all of E0, what the PyTorch reference does).
# Both sides train on all interactions (--valid_ratio 0), so they have the same batches per epoch.
# Prints seconds per epoch (reference: extrapolated from a capped number of batches, marked "~"),
# samples per second, peak RSS and the ratios.
#
#   BUILD_DIR=build ANS_DATA_DIR=../shared/data benchmarks/compare.sh [OUT_DIR]
#   # the docs/performance.md table (pass 2, ~1 min on a quiet machine):
#   ANS_MF_BATCHES=60 ANS_LGCN_BATCHES=10 REF_BATCHES_MF=8 REF_BATCHES_LGCN=3 benchmarks/compare.sh
# Run it on a quiet machine: under contention both sides slow down by different factors (the reference by 8x).
#
# Env: THREADS (2), REF_BATCHES_MF (10), REF_BATCHES_LGCN (5): batches the reference runs per case;
#      ANS_LGCN_BATCHES (40): cap for ans-train's LightGCN-ANS runs (ans-train --max_batches, extrapolated,
#      marked "~"; 0 = full epoch); ANS_MF_BATCHES (0 = full epoch); DATASETS ("amazon_beauty gowalla").
# Whole script: ~10-15 min on the 2-core development machine.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
BUILD_DIR="${BUILD_DIR:-$ROOT/build}"
DATA="${ANS_DATA_DIR:-$ROOT/../shared/data}"
OUT="${1:-/tmp/ans_compare}"
THREADS="${THREADS:-2}"
REF_BATCHES_MF="${REF_BATCHES_MF:-10}"
REF_BATCHES_LGCN="${REF_BATCHES_LGCN:-5}"
ANS_LGCN_BATCHES="${ANS_LGCN_BATCHES:-40}"
ANS_MF_BATCHES="${ANS_MF_BATCHES:-0}"
DATASETS="${DATASETS:-amazon_beauty gowalla}"
PY="${PYTHON:-/usr/bin/python3}"
mkdir -p "$OUT"
export OMP_NUM_THREADS="$THREADS"
echo "load before: $(uptime)" | tee "$OUT/machine.txt"

for ds in $DATASETS; do
  for case in mf mf_adam lightgcn; do
    tag="${ds}_${case}"
    enc="${case%_adam}"; opt=(); [ "$case" = mf_adam ] && opt=(--optimizer adam)
    if [ "$enc" = mf ]; then cap="$ANS_MF_BATCHES"; rcap="$REF_BATCHES_MF"; else cap="$ANS_LGCN_BATCHES"; rcap="$REF_BATCHES_LGCN"; fi
    capflag=(); [ "$cap" -gt 0 ] && capflag=(--max_batches "$cap")
    echo "== $tag: ans-train ($(uptime | sed 's/.*load/load/'))" >&2
    layers=(); [ "$enc" = lightgcn ] && layers=(--n_layers 3)   # ans-train rejects --n_layers with mf
    "$BUILD_DIR/examples/ans-train" --model_name ANS --encoder "$enc" "${layers[@]}" --dataset "$ds" --path "$DATA" \
      --epoch 1 --eval_every 1000 --early_stop 0 --quiet --json "$OUT/ans_$tag.json" --num_workers "$THREADS" \
      --valid_ratio 0 "${opt[@]}" "${capflag[@]}" > "$OUT/ans_$tag.log" 2>&1
    [ "$case" = mf_adam ] && continue   # same reference run as "mf"
    echo "== $tag: reference, $rcap batches ($(uptime | sed 's/.*load/load/'))" >&2
    "$PY" "$ROOT/benchmarks/reference/ans_ref.py" --model_name ANS --encoder "$enc" --n_layers 3 --dataset "$ds" \
      --path "$DATA" --epoch 1 --max_batches "$rcap" --eval_every 0 --valid_ratio 0 --num_workers "$THREADS" \
      --json "$OUT/ref_$tag.json" > "$OUT/ref_$tag.log" 2>&1
  done
done
echo "load after: $(uptime)" | tee -a "$OUT/machine.txt"

"$PY" - "$OUT" $DATASETS <<'PYEOF'
import json, sys, os
out, dss = sys.argv[1], sys.argv[2:]
def get(d, *keys, default=None):
    for k in keys:
        if k in d: return d[k]
    return default
print(f"\n| dataset | model | ans s/epoch | ref s/epoch | speed-up | ans samples/s | ref samples/s | ans RSS MB | ref RSS MB | RSS ratio |")
print("|---|---|---|---|---|---|---|---|---|---|")
for ds in dss:
    for case, enc, name in (("mf", "mf", "MF-ANS (lazy_adam)"), ("mf_adam", "mf", "MF-ANS (adam)"),
                            ("lightgcn", "lightgcn", "LightGCN-ANS L=3")):
        try:
            a = json.load(open(f"{out}/ans_{ds}_{case}.json")); r = json.load(open(f"{out}/ref_{ds}_{enc}.json"))
        except Exception as e:
            print(f"| {ds} | {name} | missing ({e}) |"); continue
        a_spe = float(get(a, "train_seconds_per_epoch"))
        a_cap = bool(get(a, "extrapolated", "train_extrapolated", default=False))
        nb = float(get(r, "batches_per_epoch"))
        r_spb = float(get(r, "seconds_per_batch")); r_spe = r_spb * nb
        bs = 2048.0
        a_sps = bs * float(get(a, "batches_per_epoch", default=nb)) / a_spe
        r_sps = bs / r_spb
        a_rss = float(get(a, "peak_rss_mb")); r_rss = float(get(r, "peak_rss_mb"))
        print(f"| {ds} | {name} | {'~' if a_cap else ''}{a_spe:.2f} | ~{r_spe:.1f} | {r_spe / a_spe:.1f}x | {a_sps:,.0f} | {r_sps:,.0f} | {a_rss:.0f} | {r_rss:.0f} | {a_rss / r_rss:.2f} |")
print("\n~ = extrapolated from a capped number of batches (seconds per batch x batches per epoch).")
PYEOF
