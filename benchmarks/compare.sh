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
#
# PARTS ("reference baselines"): "reference" is the ANS vs PyTorch table above; "baselines" times the baseline
# trainers (BPR-MF with lazy Adam, dense Adam and hogwild_sgd; DNS-MF and MixGCF-MF with K = 16; MF-ANS;
# LightGCN-RNS, -DNS and -ANS per hop, L = 3, capped at ANS_LGCN_BATCHES) at every thread count in THREADS_LIST
# ("1 2"), full Gowalla epochs, batch 2048, and prints s/epoch, samples/s, the 2-thread speed-up and the
# issue-12 ratios. With IMPLICIT_PATH set to an implicit 0.7.3 source tree with its CPU extensions built
# (docs/performance.md, "implicit"), implicit's BPR runs beside ours (benchmarks/implicit_bpr.py, 3 epochs,
# median); without it that row says it was skipped. LOAD=1 runs the baselines beside one busy-loop process
# (the "competing process" of the targets). BASE_DATASET (gowalla).
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
PARTS="${PARTS:-reference baselines}"
THREADS_LIST="${THREADS_LIST:-1 2}"
BASE_DATASET="${BASE_DATASET:-gowalla}"
mkdir -p "$OUT"
export OMP_NUM_THREADS="$THREADS"
echo "load before: $(uptime)" | tee "$OUT/machine.txt"

if [[ " $PARTS " == *" reference "* ]]; then
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
fi

[[ " $PARTS " == *" baselines "* ]] || exit 0
BASE_CASES=(
  "bpr_lazy|BPR-MF, lazy Adam|--model_name BPRMF --optimizer lazy_adam"
  "bpr_adam|BPR-MF, dense Adam|--model_name BPRMF --optimizer adam"
  "bpr_hogwild|BPR-MF, hogwild_sgd (lr 0.01, l2 0.01)|--model_name BPRMF --optimizer hogwild_sgd --lr 0.01 --l2 0.01"
  "dns_mf|DNS-MF K=16, lazy Adam|--model_name DNS --encoder mf --num_neg 16 --optimizer lazy_adam"
  "mixgcf_mf|MixGCF-MF K=16, lazy Adam|--model_name MixGCF --encoder mf --num_neg 16 --optimizer lazy_adam"
  "ans_mf|MF-ANS K=16, lazy Adam|--model_name ANS --encoder mf --num_neg 16 --optimizer lazy_adam"
  "lgcn_rns|LightGCN-RNS L=3|--model_name LightGCN --n_layers 3 --optimizer adam --max_batches $ANS_LGCN_BATCHES"
  "lgcn_dns|LightGCN-DNS L=3 K=16|--model_name DNS --encoder lightgcn --n_layers 3 --num_neg 16 --optimizer adam --max_batches $ANS_LGCN_BATCHES"
  "lgcn_ans|LightGCN-ANS L=3 K=16 (per hop)|--model_name ANS --encoder lightgcn --n_layers 3 --num_neg 16 --max_batches $ANS_LGCN_BATCHES"
)
BUSY=""
if [ "${LOAD:-0}" = 1 ]; then
  (while :; do :; done) &
  BUSY=$!
  trap 'kill $BUSY 2>/dev/null || true' EXIT
  echo "baselines beside one busy-loop process (pid $BUSY)" | tee -a "$OUT/machine.txt"
fi
for t in $THREADS_LIST; do
  for c in "${BASE_CASES[@]}"; do
    IFS='|' read -r tag name flags <<< "$c"
    echo "== $name, $t thread(s) ($(uptime | sed 's/.*load/load/'))" >&2
    # shellcheck disable=SC2086
    OMP_NUM_THREADS=$t "$BUILD_DIR/examples/ans-train" $flags --dataset "$BASE_DATASET" --path "$DATA" --epoch 1 \
      --batch_size 2048 --eval_every 1000 --early_stop 0 --quiet --valid_ratio 0 --num_workers "$t" \
      --json "$OUT/base_${tag}_t$t.json" > "$OUT/base_${tag}_t$t.log" 2>&1
  done
  if [ -n "${IMPLICIT_PATH:-}" ]; then
    echo "== implicit BPR, $t thread(s)" >&2
    IMPLICIT_PATH="$IMPLICIT_PATH" "$PY" "$ROOT/benchmarks/implicit_bpr.py" --data "$DATA/$BASE_DATASET" --threads "$t" \
      --epochs 3 --eval_at "" --json "$OUT/base_implicit_t$t.json" > "$OUT/base_implicit_t$t.log" 2>&1 || echo "implicit failed: see $OUT/base_implicit_t$t.log" >&2
  fi
done
[ -n "$BUSY" ] && kill "$BUSY" 2>/dev/null || true
echo "load after baselines: $(uptime)" | tee -a "$OUT/machine.txt"
"$PY" - "$OUT" "${IMPLICIT_PATH:-}" "${LOAD:-0}" $THREADS_LIST <<'PYEOF'
import json, sys
out, implicit, load, ts = sys.argv[1], sys.argv[2], sys.argv[3] == "1", sys.argv[4:]
cases = [("bpr_lazy", "BPR-MF, lazy Adam"), ("bpr_adam", "BPR-MF, dense Adam"), ("bpr_hogwild", "BPR-MF, hogwild_sgd"),
         ("dns_mf", "DNS-MF K=16"), ("mixgcf_mf", "MixGCF-MF K=16"), ("ans_mf", "MF-ANS K=16"),
         ("lgcn_rns", "LightGCN-RNS L=3"), ("lgcn_dns", "LightGCN-DNS L=3"), ("lgcn_ans", "LightGCN-ANS L=3 per hop"),
         ("implicit", "implicit 0.7.3 BPR (Hogwild SGD)")]
spe, sps = {}, {}
for tag, _ in cases:
    for t in ts:
        try:
            d = json.load(open(f"{out}/base_{tag}_t{t}.json"))
        except Exception:
            continue
        if tag == "implicit":
            secs = sorted(d["epoch_seconds"])[len(d["epoch_seconds"]) // 2]
            spe[tag, t], sps[tag, t] = secs, d["samples_per_epoch"] / secs
        else:
            s_ = float(d["train_seconds_per_epoch"])
            spe[tag, t] = s_
            sps[tag, t] = 2048.0 * float(d["batches_per_epoch"]) / s_
print(f"\n### Baselines{' (beside one busy-loop process)' if load else ''}\n")
print("| trainer | " + " | ".join(f"s/epoch, {t} thr" for t in ts) + " | " + " | ".join(f"samples/s, {t} thr" for t in ts) +
      (f" | {ts[-1]} vs {ts[0]} thr |" if len(ts) > 1 else " |"))
print("|---" * (1 + 2 * len(ts) + (1 if len(ts) > 1 else 0)) + "|")
for tag, name in cases:
    if tag == "implicit" and not implicit:
        print(f"| {name} | skipped: set IMPLICIT_PATH to an implicit build (docs/performance.md) |"); continue
    if not any((tag, t) in spe for t in ts):
        print(f"| {name} | missing |"); continue
    row = [f"{spe[tag, t]:.3f}" if (tag, t) in spe else "-" for t in ts]
    row += [f"{sps[tag, t] / 1e6:.2f} M" if (tag, t) in sps else "-" for t in ts]
    if len(ts) > 1 and (tag, ts[0]) in spe and (tag, ts[-1]) in spe:
        row.append(f"{spe[tag, ts[0]] / spe[tag, ts[-1]]:.2f}x")
    print(f"| {name} | " + " | ".join(row) + " |")
t = ts[-1]
def ratio(a, b):
    return f"{spe[a, t] / spe[b, t]:.2f}" if (a, t) in spe and (b, t) in spe else "-"
print(f"\nRatios at {t} threads (epoch time): DNS-MF / BPR-MF (lazy) {ratio('dns_mf', 'bpr_lazy')} (target <= 2); "
      f"MixGCF-MF / BPR-MF {ratio('mixgcf_mf', 'bpr_lazy')} (<= 3); LightGCN-RNS / LightGCN-ANS {ratio('lgcn_rns', 'lgcn_ans')} (<= 0.6); "
      f"LightGCN-DNS / LightGCN-ANS {ratio('lgcn_dns', 'lgcn_ans')} (<= 0.8).")
if ("implicit", t) in sps:
    print(f"Samples/s against implicit at {t} threads: hogwild_sgd {sps['bpr_hogwild', t] / sps['implicit', t]:.2f}x (target >= 1), "
          f"lazy Adam {sps['bpr_lazy', t] / sps['implicit', t]:.2f}x (>= 0.5).")
print("LightGCN rows: extrapolated from capped batches (ANS_LGCN_BATCHES).")
PYEOF
