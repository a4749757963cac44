#!/usr/bin/env bash
# Fixed-seed check that two ans-train binaries (e.g. before and after a refactoring) train the same model:
# every case runs once per binary with the same seed and thread count, and the per-epoch losses, the
# validation and test metrics of every epoch, the best epoch and the selected test metrics must be equal to
# the last printed digit (JSON, 10 significant digits). Timings and memory are not compared.
#
#   benchmarks/same_results.sh OLD_BIN NEW_BIN [OUT_DIR]
#
# Env: DATA (../shared/data), THREADS (2), CASES (default below; NAME:DATASET:FLAGS).
# Prints one line per case (same / DIFFERENT) and exits 1 when any case differs.
set -euo pipefail
OLD="$1"
NEW="$2"
OUT="${3:-/tmp/ans_same}"
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
DATA="${DATA:-${ANS_DATA_DIR:-$ROOT/../shared/data}}"
THREADS="${THREADS:-2}"
COMMON="--epoch 3 --eval_every 1 --early_stop 0 --quiet --num_workers $THREADS --random_seed 7"
DEFAULT_CASES=(
  "ANS-MF faithful:ml-100k:--model_name ANS --encoder mf --test_ratio 0.1"
  "ANS-MF fixed:ml-100k:--model_name ANS --encoder mf --mode fixed --test_ratio 0.1"
  "ANS-LightGCN pooled:ml-100k:--model_name ANS --encoder lightgcn --n_layers 2 --mode fixed --test_ratio 0.1"
  "ANS-LightGCN per hop:ml-100k:--model_name ANS --encoder lightgcn --n_layers 2 --test_ratio 0.1"
  "BPRMF:ml-100k:--model_name BPRMF --test_ratio 0.1"
  "DNS-MF:ml-100k:--model_name DNS --encoder mf --test_ratio 0.1"
  "MixGCF:ml-100k:--model_name MixGCF --test_ratio 0.1"
  "LightGCN:ml-100k:--model_name LightGCN --n_layers 2 --test_ratio 0.1"
  "BPRMF ReChorus:grocery_and_gourmet_food:--model_name BPRMF --emb_size 32"
  "ANS-MF Beauty:amazon_beauty:--model_name ANS --encoder mf --epoch 1"
)
if [[ -n "${CASES:-}" ]]; then mapfile -t CASE_LIST <<<"$CASES"; else CASE_LIST=("${DEFAULT_CASES[@]}"); fi
mkdir -p "$OUT"
fail=0
i=0
for c in "${CASE_LIST[@]}"; do
  name="${c%%:*}"
  rest="${c#*:}"
  ds="${rest%%:*}"
  flags="${rest#*:}"
  i=$((i + 1))
  for side in old new; do
    bin="$OLD"; [[ $side == new ]] && bin="$NEW"
    # shellcheck disable=SC2086
    OMP_NUM_THREADS=$THREADS "$bin" $COMMON $flags --dataset "$ds" --path "$DATA" --json "$OUT/$i.$side.json" \
      > "$OUT/$i.$side.log" 2>&1 || { echo "$name: $side run failed (see $OUT/$i.$side.log)"; fail=1; continue 2; }
  done
  if /usr/bin/python3 - "$OUT/$i.old.json" "$OUT/$i.new.json" <<'EOF'
import json, sys
a, b = (json.load(open(p)) for p in sys.argv[1:3])
def strip(r):
    return {"epochs": [{k: e[k] for k in ("epoch", "loss", "valid", "test", "terms") if k in e} for e in r["epochs"]],
            "best_epoch": r["best_epoch"], "test": r["test"]}
sys.exit(0 if strip(a) == strip(b) else 1)
EOF
  then echo "$name ($ds): same"; else echo "$name ($ds): DIFFERENT ($OUT/$i.old.json vs $OUT/$i.new.json)"; fail=1; fi
done
exit $fail
