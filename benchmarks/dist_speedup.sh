#!/usr/bin/env bash
# Issue 17's target, in one run: MF-ANS and LightGCN-ANS (L = 3) on Gowalla, 1 process x 1 thread against
# `mpirun -np 2` x 1 thread each, the same global batch (2048) and seed; epoch speed-up, accuracy after the
# same epochs, bytes and seconds of the exchange per step, peak memory of every rank; and the machine's own
# ceiling for any 2-way split: two independent 1-process runs at once, each pinned to a core, against one alone.
#
#   benchmarks/dist_speedup.sh [EPOCHS (5)] [OUT (benchmarks/results/issue17/speedup.md)] [MODELS ("mf lightgcn")] [REPS (3)]
#
# Builds build-mpi/ (Release, -DANS_WITH_MPI=ON; Open MPI from Debian: scripts/deps.sh libopenmpi-dev
# openmpi-bin). Alternates the two configurations (1p, 2r, 1p, 2r, ...) to share the machine's noise; each
# speed-up is one back-to-back pair, and the table reports every pair and their median.
set -euo pipefail
cd "$(dirname "$0")/.."
EPOCHS="${1:-5}"
OUT="${2:-benchmarks/results/issue17/speedup.md}"
MODELS="${3:-mf lightgcn}"
REPS="${4:-3}"
source benchmarks/mpi_train_build.sh  # Open MPI, build-mpi/ans-train: BIN, DATA
mkdir -p "$(dirname "$OUT")"
tmp=$(mktemp -d /tmp/ans_dist.XXXXXX)
trap 'rm -rf "$tmp"' EXIT
timed() {  # timed NAME CMD...: runs CMD, writes its wall seconds to $tmp/NAME.wall
  local name=$1; shift
  local s e; s=$(date +%s%N); "$@" > "$tmp/$name.log"; e=$(date +%s%N)
  echo "$(( (e - s) / 1000000 ))e-3" > "$tmp/$name.wall"
}
for model in $MODELS; do
  ARGS=(--model_name ANS --mode fixed --dataset gowalla --path "$DATA" --num_workers 1 --epoch "$EPOCHS" --eval_every "$EPOCHS"
        --early_stop 0 --random_seed 0 --quiet)
  [ "$model" = lightgcn ] && ARGS+=(--encoder lightgcn --n_layers 3)
  for rep in $(seq "$REPS"); do
    timed "${model}_one_$rep" "$BIN" "${ARGS[@]}" --json "$tmp/${model}_one_$rep.json"
    timed "${model}_two_$rep" mpirun --oversubscribe --allow-run-as-root -np 2 "$BIN" "${ARGS[@]}" --json "$tmp/${model}_two_$rep.json"
  done
  # the ceiling: one epoch capped at 120 batches, alone, then two copies at once on cores 0 and 1
  CAP=(--epoch 1 --max_batches 120 --eval_every 1)
  timed "${model}_alone" taskset -c 0 "$BIN" "${ARGS[@]}" "${CAP[@]}" --json "$tmp/${model}_alone.json"
  taskset -c 0 "$BIN" "${ARGS[@]}" "${CAP[@]}" --json "$tmp/${model}_pair0.json" > /dev/null &
  taskset -c 1 "$BIN" "${ARGS[@]}" "${CAP[@]}" --json "$tmp/${model}_pair1.json" > /dev/null
  wait
done
python3 - "$tmp" "$EPOCHS" "$MODELS" "$REPS" > "$OUT" <<'EOF'
import json, statistics, sys
d, epochs, models, reps = sys.argv[1], sys.argv[2], sys.argv[3].split(), int(sys.argv[4])
def load(m, k, r=None):
    name = f"{m}_{k}_{r}" if r is not None else f"{m}_{k}"
    j = json.load(open(f"{d}/{name}.json"))
    try:
        j["wall"] = float(open(f"{d}/{name}.wall").read())
    except FileNotFoundError:
        j["wall"] = float("nan")
    return j
names = {"mf": "MF-ANS (lazy Adam; 2 ranks: owned rows)",
         "lightgcn": "LightGCN-ANS (L = 3, mean readout, Adam; 2 ranks: the bipartite chains)"}
print(f"Gowalla, recbole preset (batch 2048, K = 16, --mode fixed: the squared regulariser splits over shards), {epochs} epochs, seed 0; "
      f"1 process x 1 thread against mpirun -np 2 x 1 thread, alternated {reps} times per model (benchmarks/dist_speedup.sh).\n")
for m in models:
    one = [load(m, "one", r) for r in range(1, reps + 1)]
    two = [load(m, "two", r) for r in range(1, reps + 1)]
    print(f"### {names[m]}\n")
    print("| run | ranks | s/epoch (median) | Recall@20 | NDCG@20 | wall s | peak RSS (MB, rank by rank) | bytes sent/step (rank 0) | exchange ms/step (rank by rank) |")
    print("|---|---|---|---|---|---|---|---|---|")
    for name, runs in (("1 process", one), ("2 ranks", two)):
        for i, j in enumerate(runs):
            ex = j.get("exchange", {})
            print(f"| {name} #{i+1} | {j['ranks']} | {j['train_seconds_per_epoch']:.2f} | {j['test']['Recall@20']:.5f} | "
                  f"{j['test']['NDCG@20']:.5f} | {j['wall']:.1f} | {', '.join(f'{x:.0f}' for x in ex.get('peak_rss_mb_by_rank', [j['peak_rss_mb']]))} | "
                  f"{ex.get('bytes_sent_per_step', 0):.0f} | {', '.join(f'{x:.2f}' for x in ex.get('ms_per_step_by_rank', [0]))} |")
    ratios = [o["train_seconds_per_epoch"] / t["train_seconds_per_epoch"] for o, t in zip(one, two)]
    print()
    for i, r in enumerate(ratios):
        print(f"- pair {i+1}: speed-up {r:.2f}x per epoch; |ΔRecall@20| = {abs(one[i]['test']['Recall@20'] - two[i]['test']['Recall@20']):.2e}, "
              f"|ΔNDCG@20| = {abs(one[i]['test']['NDCG@20'] - two[i]['test']['NDCG@20']):.2e}")
    print(f"- **median speed-up {statistics.median(ratios):.2f}x** (min {min(ratios):.2f}, max {max(ratios):.2f})")
    ex = two[0].get("exchange", {})
    print(f"- rank 0 per step: {ex.get('bytes_sent_per_step', 0):.0f} bytes sent; " + ", ".join(
        f"{k} {v}" for k, v in ex.items() if k not in ("steps", "bytes_sent_per_step")))
    alone = load(m, "alone")["train_seconds_per_epoch"]
    pair = [load(m, f"pair{c}")["train_seconds_per_epoch"] for c in (0, 1)]
    print(f"- the machine's ceiling for a 2-way split: one 1-process run alone {alone:.2f} s/epoch, two at once "
          f"{pair[0]:.2f} and {pair[1]:.2f} s/epoch (120 batches, extrapolated): 2 x {alone:.2f} / {max(pair):.2f} = "
          f"**{2 * alone / max(pair):.2f}x** at most\n")
EOF
cat "$OUT"
