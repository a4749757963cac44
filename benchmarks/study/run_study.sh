#!/usr/bin/env bash
# Accuracy study (issue 5): ans-train vs the PyTorch reference on Beauty / Gowalla / Grocery.
#
# One command:   benchmarks/study/run_study.sh            (then: python3 benchmarks/study/summarize.py)
# Every run writes OUT/<part>/<run>.json (+ .log). A run whose JSON already exists (and is not "partial")
# is skipped, so the script resumes after an interruption and extra seeds can be added later.
#
# Environment (defaults = the reduced protocol used for docs/results.md):
#   BIN           ans-train binary (default: build it into BUILD=/tmp/ans_study_build from this checkout)
#   DATA          dataset root ($ANS_DATA_DIR, else ../shared/data beside the repository)
#   OUT           results root (benchmarks/study/results)
#   PARTS         space-separated subset of: beauty_mf long mixgcf_mf beauty_lgcn ref gowalla grocery ablation sens
#                 grocery_rechorus gowalla_lgcn beauty_dens (issue 11: the framework presets; RECHORUS_SEEDS "0 1 2 3 4",
#                 RECHORUS_MODELS "BPRMF LightGCN", GOWALLA_LGCN_EPOCHS 40, DENS_SEEDS "0 1 2", DENS_SAMPLERS "RNS DNS MixGCF")
#                 beauty_lgcn_ans (pooled vs per-hop ANS fixed on LightGCN; LGCN_ANS_SEEDS "0 1 2", LGCN_ANS_EPOCHS 60)
#                 mf_check (the Beauty MF RNS/DNS runs again: MF results unchanged by the readout)
#                 escape (extra seeds of ANS faithful, ours ESCAPE_SEEDS "3 4 5 6 7 8 9" and the reference's
#                 REF_ESCAPE_SEEDS "3 4", ESCAPE_EPOCHS 60 / REF_ESCAPE_EPOCHS 40: when each leaves the initial plateau)
#   LONG_EPOCHS   epochs of the "long" part (200); LONG_SEEDS (SEEDS), LONG_MODELS ("ANS_faithful ANS_fixed RNS DNS")
#   SEEDS         seeds for beauty_mf ("0 1 2"); every other part uses the first seed only
#   EPOCHS        epochs for beauty_mf and mixgcf_mf (100)
#   LGCN_EPOCHS   Beauty LightGCN epochs (40); LGCN_SEEDS (the first seed)
#   REF_EPOCHS    PyTorch reference epochs (60); REF_SEEDS (SEEDS)
#   ABL_EPOCHS    ablation and gamma/eps sensitivity epochs (60)
#   GOWALLA_EPOCHS Gowalla LightGCN epochs (4)      GOWALLA_EVAL_EVERY (2)   GOWALLA_EXTRA (extra flags)
#   GOWALLA_SAMPLERS  subset of "RNS DNS ANS_faithful ANS_fixed" (RNS)
#   SENS_GAMMAS / SENS_EPS  values for the sensitivity runs ("0.5" / "0.5"; the base 0.1 comes from beauty_mf)
#   GROCERY_EPOCHS Grocery epochs (40)
#   EVAL_EVERY    evaluation period (5)                  EARLY_STOP  patience in evaluations (10)
#   OPTIMIZER     adam (dense, PyTorch semantics = the reference's optimiser) | lazy_adam
#   JOBS          concurrent training processes (2); THREADS per process (1)
#   EXTRA         extra flags appended to every ans-train command (e.g. "--max_batches 2" for a smoke test)
#   REF_EXTRA     extra flags appended to every reference command
#   NICE          nice level (5)
#   LGCN_SAMPLERS  Beauty LightGCN subset ("RNS DNS MixGCF ANS_faithful ANS_fixed")
#   GROCERY_MODELS Grocery subset ("BPRMF LightGCN ANS")
#   SKIP_STARTED=1 skip runs that already have a log but no JSON (in progress in another invocation)
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
DATA="${DATA:-${ANS_DATA_DIR:-$ROOT/../shared/data}}"
OUT="${OUT:-$HERE/results}"
PARTS="${PARTS:-beauty_mf mixgcf_mf beauty_lgcn ref gowalla grocery ablation sens}"
SEEDS="${SEEDS:-0 1 2}"
EPOCHS="${EPOCHS:-100}"
LGCN_EPOCHS="${LGCN_EPOCHS:-40}"
REF_EPOCHS="${REF_EPOCHS:-60}"
ABL_EPOCHS="${ABL_EPOCHS:-60}"
GOWALLA_EPOCHS="${GOWALLA_EPOCHS:-4}"
GOWALLA_EVAL_EVERY="${GOWALLA_EVAL_EVERY:-2}"
GROCERY_EPOCHS="${GROCERY_EPOCHS:-40}"
EVAL_EVERY="${EVAL_EVERY:-5}"
EARLY_STOP="${EARLY_STOP:-10}"
OPTIMIZER="${OPTIMIZER:-adam}"
JOBS="${JOBS:-2}"
THREADS="${THREADS:-1}"
EXTRA="${EXTRA:-}"
REF_EXTRA="${REF_EXTRA:-}"
NICE="${NICE:-5}"
PY="${PY:-/usr/bin/python3}"
REF="$ROOT/benchmarks/reference/ans_ref.py"

if [[ -z "${BIN:-}" ]]; then
  BUILD="${BUILD:-/tmp/ans_study_build}"
  cmake -S "$ROOT" -B "$BUILD" -DCMAKE_BUILD_TYPE=Release -DANS_BUILD_TESTS=OFF -DANS_BUILD_BENCHMARKS=OFF >/dev/null
  nice -n "$NICE" cmake --build "$BUILD" -j"$JOBS" --target ans-train >/dev/null
  BIN="$BUILD/examples/ans-train"
fi
[[ -x "$BIN" ]] || { echo "ans-train not found at $BIN" >&2; exit 1; }
FIRST_SEED="${SEEDS%% *}"

mkdir -p "$OUT"
JOBFILE="$(mktemp)"
trap 'rm -f "$JOBFILE"' EXIT

# full-ranking protocol shared by Beauty/Gowalla (10% of each user's train items held out, seeded)
FULL="--metric Recall,NDCG,HR --topk 20,15 --main_metric Recall@20 --valid_ratio 0.1"
COMMON="--emb_size 64 --lr 1e-3 --eval_every $EVAL_EVERY --early_stop $EARLY_STOP --num_workers $THREADS --quiet"

# add NAME PART CMD... : queue one run (skipped when a complete JSON exists)
add() {
  local part="$1" name="$2"; shift 2
  local dir="$OUT/$part" json="$OUT/$part/$name.json"
  mkdir -p "$dir"
  if [[ -f "$json" ]] && ! grep -q '"partial": true' "$json"; then return; fi
  # SKIP_STARTED=1: also skip runs that have a log but no complete JSON (running in another invocation)
  if [[ "${SKIP_STARTED:-0}" == 1 && -f "$dir/$name.log" ]]; then return; fi
  printf '%s\n' "cd $(printf %q "$dir") && nice -n $NICE $* --json $(printf %q "$json") > $(printf %q "$dir/$name.log") 2>&1 || echo FAILED $part/$name" >> "$JOBFILE"
}
ours() { local part="$1" name="$2"; shift 2; add "$part" "$name" "$BIN" "$@" $EXTRA; }
ref() { local part="$1" name="$2"; shift 2; add "$part" "$name" "$PY" "$REF" "$@" --num_workers "$THREADS" $REF_EXTRA; }

# the RecBole/ANS settings of the first study (--preset recbole: λ = --reg_weight, lazy Adam for MF)
BEAUTY="--preset recbole --dataset amazon_beauty --path $DATA --batch_size 2048 --num_neg 16 --reg_weight 1e-4 $FULL"

for part in $PARTS; do
  case "$part" in
    beauty_mf)
      for s in $SEEDS; do
        E="--epoch $EPOCHS --random_seed $s --optimizer $OPTIMIZER"
        ours beauty_mf "RNS_s$s"         --model_name BPRMF $BEAUTY $COMMON $E
        ours beauty_mf "DNS_s$s"         --model_name DNS --encoder mf $BEAUTY $COMMON $E
        ours beauty_mf "ANS_faithful_s$s" --model_name ANS --encoder mf --mode faithful $BEAUTY $COMMON $E
        ours beauty_mf "ANS_fixed_s$s"    --model_name ANS --encoder mf --mode fixed $BEAUTY $COMMON $E
      done ;;
    long)
      # the Beauty MF samplers at a longer budget (ANS leaves its initial plateau late, and at a seed-dependent epoch)
      E="--epoch ${LONG_EPOCHS:-200} --optimizer $OPTIMIZER"
      for m in ${LONG_MODELS:-ANS_faithful ANS_fixed RNS DNS}; do
        for s in ${LONG_SEEDS:-$SEEDS}; do
          case "$m" in
            ANS_faithful|ANS_fixed) ours long "${m}_s$s" --model_name ANS --encoder mf --mode "${m#ANS_}" $BEAUTY $COMMON $E --random_seed $s ;;
            RNS) ours long "RNS_s$s" --model_name BPRMF $BEAUTY $COMMON $E --random_seed $s ;;
            DNS) ours long "DNS_s$s" --model_name DNS --encoder mf $BEAUTY $COMMON $E --random_seed $s ;;
          esac
        done
      done ;;
    mixgcf_mf)
      ours beauty_mf "MixGCF_s$FIRST_SEED" --model_name MixGCF --encoder mf $BEAUTY $COMMON \
        --epoch $EPOCHS --random_seed $FIRST_SEED --optimizer $OPTIMIZER ;;
    beauty_lgcn)
      for s in ${LGCN_SEEDS:-$FIRST_SEED}; do
        E="--epoch $LGCN_EPOCHS --random_seed $s --optimizer adam"
        for m in ${LGCN_SAMPLERS:-RNS DNS MixGCF ANS_faithful ANS_fixed}; do
          case "$m" in
            RNS) ours beauty_lgcn "RNS_s$s" --model_name LightGCN --n_layers 3 $BEAUTY $COMMON $E ;;
            DNS|MixGCF) ours beauty_lgcn "${m}_s$s" --model_name $m --encoder lightgcn --n_layers 3 $BEAUTY $COMMON $E ;;
            ANS_faithful|ANS_fixed) ours beauty_lgcn "${m}_s$s" --model_name ANS --encoder lightgcn --n_layers 3 \
                                      --mode "${m#ANS_}" $BEAUTY $COMMON $E ;;
          esac
        done
      done ;;
    ref)
      # the slow ANS runs first, so that a 2-job queue keeps both slots busy
      R="--dataset amazon_beauty --path $DATA --emb_size 64 --lr 1e-3 --l2 1e-4 --num_neg 16 --batch_size 2048
         --topk 20,15 --valid_ratio 0.1 --eval_every $EVAL_EVERY --epoch $REF_EPOCHS"
      for s in ${REF_SEEDS:-$SEEDS}; do ref ref "ANS_faithful_s$s" --model_name ANS --encoder mf $R --random_seed $s; done
      for s in ${REF_SEEDS:-$SEEDS}; do
        ref ref "RNS_s$s" --model_name BPRMF $R --random_seed $s
        ref ref "DNS_s$s" --model_name DNS --encoder mf $R --random_seed $s
      done ;;
    gowalla)
      GW="--preset recbole --n_layers 3 --dataset gowalla --path $DATA --batch_size 2048 --reg_weight 1e-4 $FULL --emb_size 64 --lr 1e-3
          --eval_every $GOWALLA_EVAL_EVERY --early_stop 0 --num_workers $THREADS --quiet --epoch $GOWALLA_EPOCHS
          --random_seed $FIRST_SEED --optimizer adam ${GOWALLA_EXTRA:-}"
      for m in ${GOWALLA_SAMPLERS:-RNS}; do
        case "$m" in
          RNS) ours gowalla "LightGCN_RNS_s$FIRST_SEED" --model_name LightGCN $GW ;;
          DNS) ours gowalla "LightGCN_DNS_s$FIRST_SEED" --model_name DNS --encoder lightgcn $GW ;;
          ANS_faithful|ANS_fixed) ours gowalla "LightGCN_${m}_s$FIRST_SEED" --model_name ANS --encoder lightgcn \
                                    --mode "${m#ANS_}" $GW ;;
        esac
      done ;;
    grocery)
      G="--dataset grocery_and_gourmet_food --path $DATA --metric HR,NDCG --topk 5,10,20 --main_metric NDCG@5
         --emb_size 64 --lr 1e-3 --epoch $GROCERY_EPOCHS --eval_every 1 --early_stop 10 --num_workers $THREADS --quiet
         --random_seed $FIRST_SEED"
      # ReChorus settings for the baselines (batch 256, one negative, l2 1e-6); ANS as in docs/training.md (l2 0)
      for m in ${GROCERY_MODELS:-BPRMF LightGCN ANS}; do
        case "$m" in
          BPRMF) ours grocery "BPRMF_s$FIRST_SEED" --preset recbole --model_name BPRMF --batch_size 256 --num_neg 1 --reg_weight 1e-6 $G ;;
          LightGCN) ours grocery "LightGCN_s$FIRST_SEED" --preset recbole --model_name LightGCN --n_layers 3 --batch_size 256 --num_neg 1 --reg_weight 1e-6 $G ;;
          ANS) ours grocery "ANS_s$FIRST_SEED" --model_name ANS --encoder mf --batch_size 256 --num_neg 16 --reg_weight 0 $G ;;
        esac
      done ;;
    grocery_rechorus)
      # issue 11: ReChorus's own commands (its log/exp.csv: BPRMF --l2 1e-6, LightGCN --l2 1e-8), seeds 0-4 as
      # ReChorus ran them; the rechorus preset gives its optimiser, weight decay, batch, sampling and protocol
      G="--dataset grocery_and_gourmet_food --path $DATA --emb_size 64 --lr 1e-3 --num_workers $THREADS --quiet"
      for s in ${RECHORUS_SEEDS:-0 1 2 3 4}; do
        for m in ${RECHORUS_MODELS:-BPRMF LightGCN}; do
          case "$m" in
            BPRMF) ours grocery_rechorus "BPRMF_s$s" --model_name BPRMF --l2 1e-6 $G --random_seed $s ;;
            LightGCN) ours grocery_rechorus "LightGCN_s$s" --model_name LightGCN --n_layers 3 --l2 1e-8 $G --random_seed $s ;;
          esac
        done
      done ;;
    gowalla_lgcn)
      # issue 11: the LightGCN-PyTorch command (--preset lightgcn), tested every epoch for the curve
      ours gowalla_lgcn "LightGCN_s$FIRST_SEED" --model_name LightGCN --preset lightgcn --n_layers 3 --dataset gowalla \
        --path $DATA --epoch ${GOWALLA_LGCN_EPOCHS:-40} --eval_every 1 --num_workers $THREADS --quiet --random_seed $FIRST_SEED \
        --log "$OUT/gowalla_lgcn/LightGCN_s$FIRST_SEED.jsonl" ;;
    gowalla_lgcn_long)
      # issue 11: the same command for longer (tested every 4 epochs); the JSON lines log keeps the curve of a run
      # that a session ended early (summarize.py reads it, marked partial)
      ours gowalla_lgcn_long "LightGCN_s$FIRST_SEED" --model_name LightGCN --preset lightgcn --n_layers 3 --dataset gowalla \
        --path $DATA --epoch ${GOWALLA_LONG_EPOCHS:-120} --eval_every 4 --num_workers $THREADS --quiet --random_seed $FIRST_SEED \
        --log "$OUT/gowalla_lgcn_long/LightGCN_s$FIRST_SEED.jsonl" ;;
    beauty_dens)
      # issue 11: Beauty LightGCN (L = 3, mean pooling) under the DENS logs' protocol (--preset mixgcf: test every
      # 5 epochs, stop after 10 evaluations without a better test Recall@20: best-on-test, as the logs), and
      # validation-selected beside it (10% of train held out, the same stopping rule on dev)
      for s in ${DENS_SEEDS:-0 1 2}; do
        for m in ${DENS_SAMPLERS:-RNS DNS MixGCF}; do
          case "$m" in
            RNS) M="--model_name LightGCN" ;;
            *) M="--model_name $m --encoder lightgcn" ;;
          esac
          ours beauty_dens "${m}_test_s$s" $M --preset mixgcf --n_layers 3 --dataset amazon_beauty --path $DATA \
            --num_workers $THREADS --quiet --random_seed $s
          ours beauty_dens "${m}_valid_s$s" $M --preset mixgcf --n_layers 3 --dataset amazon_beauty --path $DATA \
            --valid_ratio 0.1 --num_workers $THREADS --quiet --random_seed $s
        done
      done ;;
    beauty_lgcn_ans)
      # issue 11: ANS in fixed mode on LightGCN (L = 3), pooled (mean readout: one gate pass, the default) against
      # per hop (--readout concat: the reference's H gate passes), validation-selected
      for s in ${LGCN_ANS_SEEDS:-0 1 2}; do
        for r in mean concat; do
          ours beauty_lgcn_ans "ANS_fixed_${r}_s$s" --model_name ANS --encoder lightgcn --n_layers 3 --mode fixed \
            --readout $r $BEAUTY $COMMON --epoch ${LGCN_ANS_EPOCHS:-60} --random_seed $s --optimizer adam
        done
      done ;;
    mf_check)
      # issue 11: MF has one hop (the readout is the identity): the Beauty MF RNS/DNS runs of beauty_mf again
      for s in $SEEDS; do
        E="--epoch $EPOCHS --random_seed $s --optimizer $OPTIMIZER"
        ours mf_check "RNS_s$s" --model_name BPRMF $BEAUTY $COMMON $E
        ours mf_check "DNS_s$s" --model_name DNS --encoder mf $BEAUTY $COMMON $E
      done ;;
    escape)
      for s in ${ESCAPE_SEEDS:-3 4 5 6 7 8 9}; do
        ours escape "ANS_faithful_s$s" --model_name ANS --encoder mf --mode faithful $BEAUTY $COMMON \
          --epoch ${ESCAPE_EPOCHS:-60} --random_seed $s --optimizer $OPTIMIZER
      done
      R="--dataset amazon_beauty --path $DATA --emb_size 64 --lr 1e-3 --l2 1e-4 --num_neg 16 --batch_size 2048
         --topk 20,15 --valid_ratio 0.1 --eval_every $EVAL_EVERY --epoch ${REF_ESCAPE_EPOCHS:-40}"  # ans_ref.py: --l2 = λ
      for s in ${REF_ESCAPE_SEEDS:-3 4}; do ref escape "ref_ANS_faithful_s$s" --model_name ANS --encoder mf $R --random_seed $s; done ;;
    ablation)
      E="--epoch $ABL_EPOCHS --random_seed $FIRST_SEED --optimizer $OPTIMIZER --model_name ANS --encoder mf --mode faithful"
      ours ablation "ANS_faithful_gamma0_s$FIRST_SEED"  $BEAUTY $COMMON $E --gamma 0
      ours ablation "ANS_faithful_noise0_s$FIRST_SEED"  $BEAUTY $COMMON $E --noise_scale 0
      ours ablation "ANS_faithful_nomargin_s$FIRST_SEED" $BEAUTY $COMMON $E --margin none ;;
    sens)
      E="--epoch $ABL_EPOCHS --random_seed $FIRST_SEED --optimizer $OPTIMIZER --model_name ANS --encoder mf --mode faithful"
      for g in ${SENS_GAMMAS:-0.5}; do ours sens "ANS_faithful_gamma${g}_s$FIRST_SEED" $BEAUTY $COMMON $E --gamma "$g"; done
      for e in ${SENS_EPS:-0.5}; do ours sens "ANS_faithful_eps${e}_s$FIRST_SEED" $BEAUTY $COMMON $E --eps "$e"; done ;;
    *) echo "unknown part: $part" >&2; exit 2 ;;
  esac
done

n=$(wc -l < "$JOBFILE")
echo "ans-train: $BIN"
echo "queued $n runs into $OUT (JOBS=$JOBS)"
{ echo "# $(date -u +%FT%TZ) PARTS=\"$PARTS\" ans-train=$BIN"; cat "$JOBFILE"; } >> "$OUT/commands.txt"
[[ "$n" -gt 0 ]] || exit 0
# one line per run, JOBS at a time, in queue order
tr '\n' '\0' < "$JOBFILE" | xargs -0 -P "$JOBS" -I{} bash -c '{}'
echo "done: $(ls "$OUT"/*/*.json 2>/dev/null | wc -l) result files under $OUT"
