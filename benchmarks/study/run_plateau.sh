#!/usr/bin/env bash
# Issue 13: why ANS sits on a plateau, and the remedy (docs/results.md, "ANS from the first epoch").
#
# One command:   benchmarks/study/run_plateau.sh        (then: /usr/bin/python3 benchmarks/study/plateau.py)
# Every run writes OUT/<part>/<run>.json (+ .log); a run whose JSON exists is skipped, so the script resumes.
#
# Parts (PARTS, space-separated; default: all in this order):
#   diag    per-term gradient norms (--diagnose_every) over the first epochs: Beauty MF faithful / fixed,
#           Beauty LightGCN (L = 3) faithful (per hop) / fixed (pooled mean); DIAG_EPOCHS (30), DIAG_EVERY (4 steps)
#   screen  the remedy candidates, fixed mode, Beauty MF, seed 0, SCREEN_EPOCHS (30), evaluated every epoch on
#           the validation split only (the choice never looks at test)
#   screen_long  the screen's survivors (squared D/O; warm-up 10 with the norms) at 100 epochs, seed 0
#   final   the chosen remedy (REMEDY, flags) beside DNS / MixGCF / ANS without it, 3 seeds (FINAL_SEEDS):
#           Beauty MF (100 epochs), Beauty LightGCN per hop and pooled (40), Gowalla MF (40), Grocery (ReChorus
#           protocol, 40), ML-100k MF (100; not used while choosing)
#   tta2    time to accuracy with 2 threads (run it alone, with THREADS=2 JOBS=1): DNS, faithful ANS and the remedy,
#           no early stopping, seeds TTA2_SEEDS (0 1 2), Beauty MF (100 epochs) and Gowalla MF (TTA2_GOWALLA_EPOCHS,
#           40); TTA2_DATASETS selects
# Environment: BIN (ans-train; default: built into BUILD=/tmp/ans_plateau_build), DATA, OUT
# (benchmarks/study/results/plateau), JOBS (2), THREADS (1 per process), NICE (5), EXTRA (appended to every run).
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
DATA="${DATA:-${ANS_DATA_DIR:-$ROOT/../shared/data}}"
OUT="${OUT:-$HERE/results/plateau}"
PARTS="${PARTS:-diag screen screen_long final}"
JOBS="${JOBS:-2}"
THREADS="${THREADS:-1}"
NICE="${NICE:-5}"
EXTRA="${EXTRA:-}"
DIAG_EPOCHS="${DIAG_EPOCHS:-30}"
DIAG_EVERY="${DIAG_EVERY:-4}"
SCREEN_EPOCHS="${SCREEN_EPOCHS:-30}"
FINAL_SEEDS="${FINAL_SEEDS:-0 1 2}"
# the remedy the screen chose (fixed mode's default when it is; written out so the runs say what they ran)
REMEDY="${REMEDY:---gamma_warmup 10 --aux_form norm}"

if [[ -z "${BIN:-}" ]]; then
  BUILD="${BUILD:-/tmp/ans_plateau_build}"
  cmake -S "$ROOT" -B "$BUILD" -DCMAKE_BUILD_TYPE=Release -DANS_BUILD_TESTS=OFF -DANS_BUILD_BENCHMARKS=OFF >/dev/null
  nice -n "$NICE" cmake --build "$BUILD" -j"$JOBS" --target ans-train >/dev/null
  BIN="$BUILD/examples/ans-train"
fi
[[ -x "$BIN" ]] || { echo "ans-train not found at $BIN" >&2; exit 1; }
mkdir -p "$OUT"
JOBFILE="$(mktemp)"
trap 'rm -f "$JOBFILE"' EXIT

# ours PART NAME FLAGS... : queue one run (skipped when its JSON exists)
ours() {
  local part="$1" name="$2"; shift 2
  local dir="$OUT/$part" json="$OUT/$part/$name.json"
  mkdir -p "$dir"
  [[ -f "$json" ]] && return
  printf '%s\n' "cd $(printf %q "$dir") && nice -n $NICE $BIN $* $EXTRA --num_workers $THREADS --quiet --json $(printf %q "$json") > $(printf %q "$dir/$name.log") 2>&1 || echo FAILED $part/$name" >> "$JOBFILE"
}

# the settings of the accuracy study (run_study.sh): RecBole preset, λ = 1e-4, K = 16, dense Adam, full ranking
FULL="--metric Recall,NDCG,HR --topk 20,15 --main_metric Recall@20 --valid_ratio 0.1"
BEAUTY="--preset recbole --dataset amazon_beauty --path $DATA --batch_size 2048 --num_neg 16 --reg_weight 1e-4 $FULL --emb_size 64 --lr 1e-3 --optimizer adam"
GOWALLA="--preset recbole --dataset gowalla --path $DATA --batch_size 2048 --num_neg 16 --reg_weight 1e-4 $FULL --emb_size 64 --lr 1e-3 --optimizer adam"
# ML-100k is one .inter file: 10% of each user's items held out as test, then 10% of the rest as validation
ML100K="--preset recbole --dataset ml-100k --path $DATA --test_ratio 0.1 --batch_size 2048 --num_neg 16 --reg_weight 1e-4 $FULL --emb_size 64 --lr 1e-3 --optimizer adam"
# Grocery: the founding ReChorus command without its impression flags (99 fixed negatives, HR/NDCG)
GROCERY="--dataset grocery_and_gourmet_food --path $DATA --emb_size 64 --lr 1e-3 --l2 0 --loss_n BPR --metric NDCG,HR --topk 5,10,20 --main_metric NDCG@5"
LGCN="--encoder lightgcn --n_layers 3"

for part in $PARTS; do
  case "$part" in
    diag)
      D="--epoch $DIAG_EPOCHS --eval_every 1 --early_stop 1000 --diagnose_every $DIAG_EVERY --random_seed 0"
      ours diag mf_faithful --model_name ANS --encoder mf --mode faithful $BEAUTY $D
      ours diag mf_fixed --model_name ANS --encoder mf --mode fixed $BEAUTY $D
      D="--epoch $((DIAG_EPOCHS < 20 ? DIAG_EPOCHS : 20)) --eval_every 1 --early_stop 1000 --diagnose_every $DIAG_EVERY --random_seed 0"
      ours diag lgcn_faithful_concat --model_name ANS $LGCN --mode faithful $BEAUTY $D
      ours diag lgcn_fixed_mean --model_name ANS $LGCN --mode fixed $BEAUTY $D
      ;;
    screen)
      S="--epoch $SCREEN_EPOCHS --eval_every 1 --early_stop 1000 --random_seed 0"
      ours screen DNS --model_name DNS --encoder mf $BEAUTY $S
      ours screen fixed --model_name ANS --encoder mf --mode fixed $BEAUTY $S --gamma_warmup 0 --aux_form norm
      for w in 2 5 10 20; do
        ours screen "fixed_warmup$w" --model_name ANS --encoder mf --mode fixed $BEAUTY $S --gamma_warmup $w --aux_form norm
      done
      ours screen fixed_squared --model_name ANS --encoder mf --mode fixed $BEAUTY $S --gamma_warmup 0 --aux_form squared
      ours screen fixed_warmup5_squared --model_name ANS --encoder mf --mode fixed $BEAUTY $S --gamma_warmup 5 --aux_form squared
      ours screen fixed_init0.1 --model_name ANS --encoder mf --mode fixed $BEAUTY $S --gamma_warmup 0 --aux_form norm \
        --init normal --init_std 0.1
      ;;
    screen_long)
      # the screen's survivors at the final budget (100 epochs, seed 0, validation only)
      S="--epoch 100 --eval_every 1 --early_stop 1000 --random_seed 0"
      ours screen_long fixed_squared --model_name ANS --encoder mf --mode fixed $BEAUTY $S --gamma_warmup 0 --aux_form squared
      ours screen_long fixed_warmup10 --model_name ANS --encoder mf --mode fixed $BEAUTY $S --gamma_warmup 10 --aux_form norm
      ;;
    final)
      # FINAL_DATASETS: a subset of "beauty_mf gowalla_mf beauty_lgcn grocery ml100k" (default: all)
      want() { [[ " ${FINAL_DATASETS:-beauty_mf gowalla_mf beauty_lgcn grocery ml100k} " == *" $1 "* ]]; }
      for s in $FINAL_SEEDS; do
        F="--epoch 100 --eval_every 1 --early_stop 20 --random_seed $s"
        want beauty_mf && ours beauty_mf "DNS_s$s" --model_name DNS --encoder mf $BEAUTY $F
        want beauty_mf && ours beauty_mf "MixGCF_s$s" --model_name MixGCF --encoder mf $BEAUTY $F
        want beauty_mf && ours beauty_mf "ANS_faithful_s$s" --model_name ANS --encoder mf --mode faithful $BEAUTY $F
        want beauty_mf && ours beauty_mf "ANS_remedy_s$s" --model_name ANS --encoder mf --mode fixed $BEAUTY $F $REMEDY
        F="--epoch 40 --eval_every 1 --early_stop 20 --random_seed $s"
        want gowalla_mf && ours gowalla_mf "DNS_s$s" --model_name DNS --encoder mf $GOWALLA $F
        # faithful ANS on Gowalla and Grocery: the first seed only (the time-to-accuracy baseline; 2 cores)
        [[ "$s" == "${FINAL_SEEDS%% *}" ]] && want gowalla_mf && ours gowalla_mf "ANS_faithful_s$s" --model_name ANS --encoder mf --mode faithful $GOWALLA $F
        want gowalla_mf && ours gowalla_mf "ANS_remedy_s$s" --model_name ANS --encoder mf --mode fixed $GOWALLA $F $REMEDY
        F="--epoch 40 --eval_every 1 --early_stop 20 --random_seed $s"
        want beauty_lgcn && ours beauty_lgcn "DNS_s$s" --model_name DNS $LGCN $BEAUTY $F
        want beauty_lgcn && ours beauty_lgcn "MixGCF_s$s" --model_name MixGCF $LGCN $BEAUTY $F
        want beauty_lgcn && ours beauty_lgcn "ANS_remedy_concat_s$s" --model_name ANS $LGCN --mode fixed --readout concat $BEAUTY $F $REMEDY
        want beauty_lgcn && ours beauty_lgcn "ANS_remedy_mean_s$s" --model_name ANS $LGCN --mode fixed --readout mean $BEAUTY $F $REMEDY
        F="--epoch 40 --eval_every 1 --early_stop 10 --random_seed $s"
        want grocery && ours grocery "DNS_s$s" --model_name DNS --encoder mf --num_neg 16 --batch_size 256 $GROCERY $F
        [[ "$s" == "${FINAL_SEEDS%% *}" ]] && want grocery && ours grocery "ANS_faithful_s$s" --model_name ANS --encoder mf --mode faithful --num_neg 16 --batch_size 256 $GROCERY $F
        want grocery && ours grocery "ANS_remedy_s$s" --model_name ANS --encoder mf --mode fixed --num_neg 16 --batch_size 256 $GROCERY $F $REMEDY
        F="--epoch 100 --eval_every 1 --early_stop 20 --random_seed $s"
        want ml100k && ours ml100k "DNS_s$s" --model_name DNS --encoder mf $ML100K $F
        want ml100k && ours ml100k "MixGCF_s$s" --model_name MixGCF --encoder mf $ML100K $F
        want ml100k && ours ml100k "ANS_faithful_s$s" --model_name ANS --encoder mf --mode faithful $ML100K $F
        want ml100k && ours ml100k "ANS_remedy_s$s" --model_name ANS --encoder mf --mode fixed $ML100K $F $REMEDY
      done ;;
    tta2)
      for ds in ${TTA2_DATASETS:-beauty_mf gowalla_mf}; do
        if [[ $ds == beauty_mf ]]; then D="$BEAUTY"; E=100; else D="$GOWALLA"; E="${TTA2_GOWALLA_EPOCHS:-40}"; fi
        for s in ${TTA2_SEEDS:-0 1 2}; do
          F="--epoch $E --eval_every 1 --early_stop 0 --random_seed $s"  # no early stop: faithful would stop on its plateau
          ours "tta2_$ds" "DNS_s$s" --model_name DNS --encoder mf $D $F
          ours "tta2_$ds" "ANS_faithful_s$s" --model_name ANS --encoder mf --mode faithful $D $F
          ours "tta2_$ds" "ANS_remedy_s$s" --model_name ANS --encoder mf --mode fixed $D $F $REMEDY
        done
      done ;;
    *) echo "unknown part '$part'" >&2; exit 2 ;;
  esac
done

n=$(wc -l < "$JOBFILE")
echo "$n runs to do (JOBS=$JOBS, THREADS=$THREADS)"
{ echo "# $(date -u +%FT%TZ) PARTS=\"$PARTS\" REMEDY=\"$REMEDY\" ans-train=$BIN"; cat "$JOBFILE"; } >> "$OUT/commands.txt"
tr '\n' '\0' < "$JOBFILE" | xargs -0 -P "$JOBS" -I{} bash -c '{}'
