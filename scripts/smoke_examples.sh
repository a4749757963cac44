#!/usr/bin/env bash
# Runs every example program once on small inputs; fails if any fails or if an example has no smoke entry.
set -euo pipefail
BIN=${1:-build/examples}
DATA=${ANS_DATA_DIR:-}
GOLDEN=${ANS_GOLDEN_DIR:-}
ran=()
run() { echo "+ $*"; "$@"; ran+=("$(basename "$1")"); }

run "$BIN/ans-stats"
if [ -n "$DATA" ] && [ -d "$DATA" ]; then
  # The counts each dataset's README gives.
  expect() { out=$("$BIN/ans-stats" "$DATA/$1"); ran+=(ans-stats); echo "$out"
    for kv in "${@:2}"; do grep -q "\"${kv%%=*}\": ${kv#*=}," <<<"$out" || { echo "ans-stats $1: expected $kv" >&2; exit 1; }; done; }
  expect gowalla users=29858 items=40981 train=810128 test=217242
  expect amazon_beauty users=7670 items=10887 train=63601 test=18696
  expect ml-100k users=943 items=1682 train=100000
  expect grocery_and_gourmet_food users=14681 items=8713 train=121892 dev=14681 test=14681
else
  echo "ANS_DATA_DIR not set: ans-stats smoke on real data skipped"
fi
if [ -x "$BIN/ans-golden" ]; then
  if [ -n "$GOLDEN" ] && [ -d "$GOLDEN" ]; then
    run "$BIN/ans-golden" "$GOLDEN"/*/
  else
    echo "ANS_GOLDEN_DIR not set: ans-golden smoke skipped"; ran+=(ans-golden)
  fi
fi
if [ -x "$BIN/ans-train" ]; then
  run "$BIN/ans-train" --epoch 2
  for m in BPRMF DNS MixGCF; do run "$BIN/ans-train" --model_name $m --epoch 1 --quiet; done
  run "$BIN/ans-train" --model_name ANS --encoder lightgcn --n_layers 2 --mode fixed --epoch 1 --quiet
  run "$BIN/ans-train" --model_name ANS --margin none --epoch 1 --quiet
  # the founding ReChorus command (dataset aside), every framework preset, ego scoring kept as an option
  run "$BIN/ans-train" --model_name ANS --emb_size 64 --lr 1e-3 --l2 0 --loss_n BPR --metric NDCG,HR \
    --topk 1,2,3,5,10 --main_metric NDCG@2 --model_mode TopK --epoch 1 --quiet
  run "$BIN/ans-train" --model_name LightGCN --n_layers 2 --epoch 2 --quiet                  # rechorus preset
  run "$BIN/ans-train" --model_name LightGCN --preset lightgcn --n_layers 2 --epoch 2 --eval_every 1 --quiet
  run "$BIN/ans-train" --model_name MixGCF --encoder lightgcn --preset mixgcf --epoch 2 --eval_every 1 --quiet
  run "$BIN/ans-train" --model_name DNS --encoder lightgcn --readout concat --scoring ego --epoch 1 --quiet
  run "$BIN/ans-train" --model_name ANS --encoder lightgcn --mode fixed --readout sum --epoch 1 --quiet
  if [ -n "$DATA" ] && [ -d "$DATA/grocery_and_gourmet_food" ]; then
    run "$BIN/ans-train" --model_name BPRMF --dataset grocery_and_gourmet_food --path "$DATA" --epoch 1 \
      --metric NDCG,HR --topk 1,2,3,5,10 --main_metric NDCG@2 --quiet
  fi
  # Each preset resolves to its framework's settings (the effective configuration line)
  conf() { "$BIN/ans-train" "$@" --epoch 0 --quiet | sed -n 's/^config: //p'; ran+=(ans-train); }
  want() { for kv in "${@:2}"; do grep -qF -- " $kv " <<<" $1 " || { echo "preset: expected $kv in: $1" >&2; exit 1; }; done; }
  want "$(conf --model_name BPRMF)" 'preset="rechorus"' 'optimizer="adam"' batch_size=256 num_neg=1 \
    'init="normal(0, 0.01)"' 'stop_rule="rechorus"' reg_weight=0 'metric="NDCG,HR"' 'topk="5,10,20,50"'
  want "$(conf --model_name LightGCN)" 'preset="rechorus"' 'readout="mean"' 'init="xavier_uniform"' 'scoring="trained"'
  want "$(conf --model_name LightGCN --preset lightgcn)" 'init="normal(0, 0.1)"' 'pair_sampling="user_uniform"' \
    'reg_form="squared/2B"' 'bpr_form="softplus"' 'protocol="full"' batch_size=2048 eval_every=10
  want "$(conf --model_name MixGCF --encoder lightgcn --preset mixgcf)" num_neg=16 eval_every=5 'readout="mean"'
  want "$(conf --model_name ANS --encoder lightgcn)" 'preset="recbole"' 'readout="concat"' 'mode="faithful"'
  want "$(conf --model_name ANS --encoder lightgcn --mode fixed)" 'readout="mean"'
  want "$(conf --model_name ANS --l2 1e-6 --reg_weight 0.5)" l2=1e-06 weight_decay=1e-06 reg_weight=0.5
  # Bad flags: a one-line error and exit code 2.
  for bad in "--lr -1" "--num_neg 0" "--metric Foo" "--bogus 1" "--dataset missing --path /nonexistent" \
             "--loss_n BCE" "--model_mode Impression" "--model_mode CTR" "--preset torch" "--readout avg" \
             "--scoring stack" "--optimizer hogwild_sgd" "--model_name LightGCN --optimizer hogwild_sgd" \
             "--emb_size 4294967297" "--test_all 4294967297" "--epoch 4294967297" "--num_neg 4294967297" \
             "--topk 5,4294967297" "--n_layers 4294967297" "--max_batches 4294967297" "--gamma -1" "--eps -1" \
             "--early_stop -1" "--random_seed -1" "--random_seed 99999999999999999999" \
             "--json /nonexistent/x.json" "--log /nonexistent/x.jsonl" "--save /nonexistent/ckpt"; do
    set +e; err=$("$BIN/ans-train" $bad 2>&1 >/dev/null); rc=$?; set -e
    [ "$rc" -eq 2 ] || { echo "ans-train $bad exited $rc, expected 2" >&2; exit 1; }
    [ "$(printf '%s\n' "$err" | wc -l)" -eq 1 ] || { echo "ans-train $bad: expected one error line, got: $err" >&2; exit 1; }
  done
  err=$("$BIN/ans-train" --model_mode Impression 2>&1 >/dev/null || true)
  grep -q "Impression needs --dataset" <<<"$err" || { echo "--model_mode Impression: '$err'" >&2; exit 1; }
  # Impression mode (issue 16): the founding command on a small hand-made impression folder, every model
  imp=$(mktemp -d /tmp/ans_smoke_imp.XXXXXX)
  mkdir -p "$imp/tiny"
  for s in train dev test; do
    { printf 'user_id\titem_id\ttime\tlabel\n'
      for u in 1 2 3 4 5 6; do for t in 1 2 3; do for i in 1 2 3 4 5; do
        printf '%d\t%d\t%d\t%d\n' "$u" "$(( (u + t + i) % 9 + 1 ))" "$t" "$(( (u + i) % 2 ))"; done; done; done; } > "$imp/tiny/$s.csv"
  done
  for m in BPRMF LightGCN ANS; do
    out=$("$BIN/ans-train" --model_name $m --emb_size 64 --lr 1e-3 --l2 0 --loss_n BPR --dataset tiny --path "$imp" \
          --metric NDCG,HR --topk 1,2,3,5,10 --main_metric NDCG@2 --model_mode Impression --epoch 2 --quiet)
    grep -q "^Test After Training: (HR@1:" <<<"$out" || { echo "impression $m: no result line: $out" >&2; exit 1; }
    grep -q "^train, dev, test request num: " <<<"$out" || { echo "impression $m: no reader counts: $out" >&2; exit 1; }
  done
  out=$("$BIN/ans-train" --model_name ANS --dataset tiny --path "$imp" --model_mode Impression --epoch 1 \
        --impression_candidates uniform --quiet)
  grep -q 'candidates="uniform"' <<<"$out" || { echo "impression ANS uniform: $out" >&2; exit 1; }
  set +e; err=$("$BIN/ans-train" --dataset tiny --path "$imp" --model_mode Impression --metric Recall 2>&1 >/dev/null); rc=$?; set -e
  [ "$rc" -eq 2 ] && grep -q "computes HR and NDCG" <<<"$err" || { echo "impression --metric Recall: $rc '$err'" >&2; exit 1; }
  rm -rf "$imp"
  # hogwild_sgd trains BPR-MF; the effective configuration says so, and the wait policy is passive unless set
  want "$(unset OMP_WAIT_POLICY; conf --model_name BPRMF --optimizer hogwild_sgd)" 'optimizer="hogwild_sgd"' 'omp_wait_policy="passive"'
  want "$(OMP_WAIT_POLICY=active conf --model_name BPRMF)" 'omp_wait_policy="active"'
  err=$("$BIN/ans-train" --loss_n BCE 2>&1 >/dev/null || true)
  grep -q "supported: BPR" <<<"$err" || { echo "--loss_n BCE: '$err'" >&2; exit 1; }
fi

# The example trainers users copy (docs/tutorial.md): synthetic data, then a real dataset when there is one.
for ex in mf-ans-loop lightgcn-dns two-tower-ans; do
  [ -x "$BIN/$ex" ] && run "$BIN/$ex" 2
done
if [ -x "$BIN/mf-ans-loop" ] && [ -n "$DATA" ] && [ -d "$DATA/amazon_beauty" ]; then
  run "$BIN/mf-ans-loop" 1 "$DATA/amazon_beauty"
fi

# Every built example must have been run.
for exe in "$BIN"/*; do
  [ -x "$exe" ] && [ -f "$exe" ] || continue
  name=$(basename "$exe")
  printf '%s\n' "${ran[@]}" | grep -x "$name" > /dev/null || { echo "example $name has no smoke run" >&2; exit 1; }
done
echo "smoke: ran ${#ran[@]} example invocations"
