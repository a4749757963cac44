#!/usr/bin/env bash
# Issue 16's study: ReChorus impression mode on ML_100kCTR, 3 seeds, validation-selected (dev NDCG@2, ReChorus's
# early stopping), the founding command with --dataset ML_100kCTR:
#
#   BPRMF, LightGCN        list-level BPR on the impression lists (ReChorus's BPRMFImpression / LightGCNImpression)
#   ANS uniform            ANS on the lists' (user, clicked item) pairs, K = 16 uniform candidates
#   ANS exposure           the same pairs, candidates = the list's not-clicked items, topped up uniformly
#
#   benchmarks/study/run_impression.sh [OUT (benchmarks/study/results/impression)] [SEEDS ("0 1 2")]
#
# Builds ML_100kCTR with scripts/make_ml100k_ctr.py (TZ=UTC) into build/data (never into the repo), then one ans-train run
# per (model, seed) with --json; a run whose JSON exists is skipped (resumable). Ends with the table
# (summarize_impression.py) written to OUT/table.md.
set -euo pipefail
cd "$(dirname "$0")/../.."
OUT="${1:-benchmarks/study/results/impression}"
SEEDS="${2:-0 1 2}"
BIN="${ANS_TRAIN:-build/examples/ans-train}"
DATA="${ANS_DATA_DIR:-../shared/data}"
mkdir -p "$OUT" build/data
[ -x "$BIN" ] || { cmake -S . -B build -DCMAKE_BUILD_TYPE=Release > /dev/null; cmake --build build -j"$(nproc)" --target ans-train; }
# the notebook dates the timestamps in local time: UTC here, so that every machine builds the same files
[ -f build/data/ML_100kCTR/train.csv ] || TZ=UTC python3 scripts/make_ml100k_ctr.py --inter "$DATA/ml-100k/ml-100k.inter" --out build/data/ML_100kCTR
EXTRA=(${STUDY_ARGS:-})  # e.g. STUDY_ARGS="--impression_idkey impression_id"
FOUNDING=(--emb_size 64 --lr 1e-3 --l2 0 --loss_n BPR --dataset ML_100kCTR --path build/data
          --metric NDCG,HR --topk 1,2,3,5,10 --main_metric NDCG@2 --model_mode Impression)
run() {  # run NAME SEED ARGS...
  local name=$1 seed=$2
  shift 2
  local js="$OUT/${name}_s${seed}.json"
  [ -s "$js" ] && { echo "skip $js"; return; }
  echo "+ $name seed $seed"
  nice "$BIN" "${FOUNDING[@]}" "${EXTRA[@]}" --random_seed "$seed" --quiet --json "$js.tmp" "$@" > "$OUT/${name}_s${seed}.log" 2>&1
  mv "$js.tmp" "$js"
  tail -n 4 "$OUT/${name}_s${seed}.log"
}
for seed in $SEEDS; do
  run bprmf "$seed" --model_name BPRMF
  run lightgcn "$seed" --model_name LightGCN
  run ans_uniform "$seed" --model_name ANS --impression_candidates uniform
  run ans_exposure "$seed" --model_name ANS --impression_candidates exposure
done
python3 benchmarks/study/summarize_impression.py "$OUT" | tee "$OUT/table.md"
