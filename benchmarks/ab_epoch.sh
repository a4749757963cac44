#!/usr/bin/env bash
# Side-by-side epoch times of two ans-train binaries (e.g. the last release and this checkout), interleaved
# run by run so that both see the same machine, and the same-run ratio NEW/OLD per case.
#
#   benchmarks/ab_epoch.sh OLD_BIN NEW_BIN [OUT_DIR]
#
# Env: DATA (../shared/data), THREADS (2), REPS (3), NEW_EXTRA (flags only the new binary takes, default
#      "--preset recbole": the settings both binaries share), CASES (default below), LGCN_BATCHES (40: LightGCN
#      epochs are extrapolated from capped batches, as compare.sh does).
# A case is NAME:DATASET:FLAGS; a case whose flags contain "NEWONLY" runs on the new binary only.
# Prints a markdown table; writes every run's JSON into OUT_DIR (default /tmp/ans_ab).
set -euo pipefail
OLD="$1"
NEW="$2"
OUT="${3:-/tmp/ans_ab}"
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
DATA="${DATA:-${ANS_DATA_DIR:-$ROOT/../shared/data}}"
THREADS="${THREADS:-2}"
REPS="${REPS:-3}"
NEW_EXTRA="${NEW_EXTRA:---preset recbole}"
LB="${LGCN_BATCHES:-40}"
COMMON="--epoch 1 --eval_every 1000 --early_stop 0 --quiet --valid_ratio 0 --num_workers $THREADS --batch_size 2048"
DEFAULT_CASES=(
  "MF-ANS lazy Adam:gowalla:--model_name ANS --encoder mf --num_neg 16"
  "MF-ANS dense Adam:gowalla:--model_name ANS --encoder mf --num_neg 16 --optimizer adam"
  "LightGCN-ANS faithful (per hop):gowalla:--model_name ANS --encoder lightgcn --n_layers 3 --num_neg 16 --max_batches $LB"
  "LightGCN-ANS fixed, per hop (--readout concat):gowalla:--model_name ANS --encoder lightgcn --n_layers 3 --mode fixed --num_neg 16 --max_batches $LB NEWONLY --readout concat"
  "LightGCN-ANS fixed, pooled (mean, the default):gowalla:--model_name ANS --encoder lightgcn --n_layers 3 --mode fixed --num_neg 16 --max_batches $LB NEWONLY"
  "LightGCN-RNS:gowalla:--model_name LightGCN --num_neg 1 --optimizer adam --max_batches $LB"
  "LightGCN-DNS:gowalla:--model_name DNS --encoder lightgcn --n_layers 3 --num_neg 16 --optimizer adam --max_batches $LB"
)
if [[ -n "${CASES:-}" ]]; then IFS=$'\n' read -r -d '' -a CASE_LIST <<<"$CASES" || true; else CASE_LIST=("${DEFAULT_CASES[@]}"); fi
mkdir -p "$OUT"
echo "load before: $(uptime)" >&2
spe() { python3 -c "import json,sys; print(json.load(open(sys.argv[1]))['train_seconds_per_epoch'])" "$1"; }
echo "| case | old s/epoch | new s/epoch | new/old |"
echo "|---|---|---|---|"
i=0
for c in "${CASE_LIST[@]}"; do
  name="${c%%:*}"; rest="${c#*:}"; ds="${rest%%:*}"; flags="${rest#*:}"
  newonly=0
  if [[ "$flags" == *NEWONLY* ]]; then newonly=1; flags="${flags/NEWONLY/}"; fi
  o=(); n=()
  for r in $(seq "$REPS"); do
    if [[ $newonly == 0 ]]; then
      "$OLD" $flags --dataset "$ds" --path "$DATA" $COMMON --json "$OUT/old_${i}_$r.json" > "$OUT/old_${i}_$r.log" 2>&1
      o+=("$(spe "$OUT/old_${i}_$r.json")")
    fi
    "$NEW" $flags $NEW_EXTRA --dataset "$ds" --path "$DATA" $COMMON --json "$OUT/new_${i}_$r.json" > "$OUT/new_${i}_$r.log" 2>&1
    n+=("$(spe "$OUT/new_${i}_$r.json")")
  done
  python3 - "$name" "${#o[@]}" "${o[@]}" "${n[@]}" <<'PY'
import statistics, sys
name, no = sys.argv[1], int(sys.argv[2])
o = [float(x) for x in sys.argv[3:3 + no]]
n = [float(x) for x in sys.argv[3 + no:]]
mo = statistics.median(o) if o else None
mn = statistics.median(n)
fmt = lambda v: " / ".join(f"{x:.2f}" for x in v)
print(f"| {name} | {fmt(o) if o else '—'} | {fmt(n)} | {f'{mn / mo:.2f}' if mo else '—'} |")
PY
  i=$((i + 1))
done
echo "load after: $(uptime)" >&2
