#!/usr/bin/env bash
# Issue 17's target, in one run: MF-ANS and LightGCN-ANS (L = 3) on Gowalla, 1 process x 1 thread against
# `mpirun -np 2` x 1 thread each, the same global batch (2048) and seed; epoch speed-up, accuracy after the
# same epochs, bytes and seconds of the exchange per step, peak memory of rank 0.
#
#   benchmarks/dist_speedup.sh [EPOCHS (5)] [OUT (benchmarks/results/issue17/speedup.md)] [MODELS ("mf lightgcn")]
#
# Builds build-mpi/ (Release, -DANS_WITH_MPI=ON; Open MPI from Debian: scripts/deps.sh libopenmpi-dev
# openmpi-bin). Alternates the two configurations (1p, 2r, 1p, 2r) to share the machine's noise.
set -euo pipefail
cd "$(dirname "$0")/.."
EPOCHS="${1:-5}"
OUT="${2:-benchmarks/results/issue17/speedup.md}"
MODELS="${3:-mf lightgcn}"
DATA="${ANS_DATA_DIR:-../shared/data}"
scripts/deps.sh libopenmpi-dev openmpi-bin
cmake -S . -B build-mpi -DCMAKE_BUILD_TYPE=Release -DANS_WITH_MPI=ON -DANS_BUILD_TESTS=OFF -DANS_BUILD_BENCHMARKS=OFF > /dev/null
cmake --build build-mpi -j"$(nproc)" --target ans-train > /dev/null
BIN=build-mpi/examples/ans-train
mkdir -p "$(dirname "$OUT")"
tmp=$(mktemp -d /tmp/ans_dist.XXXXXX)
trap 'rm -rf "$tmp"' EXIT
for model in $MODELS; do
  ARGS=(--model_name ANS --mode fixed --dataset gowalla --path "$DATA" --num_workers 1 --epoch "$EPOCHS" --eval_every "$EPOCHS"
        --early_stop 0 --random_seed 0 --quiet)
  [ "$model" = lightgcn ] && ARGS+=(--encoder lightgcn --n_layers 3)
  for rep in 1 2; do
    s=$(date +%s%N); "$BIN" "${ARGS[@]}" --json "$tmp/${model}_one_$rep.json" > "$tmp/${model}_one_$rep.log"; e=$(date +%s%N)
    echo "$(( (e - s) / 1000000 ))e-3" > "$tmp/${model}_one_$rep.wall"
    s=$(date +%s%N)
    mpirun --oversubscribe --allow-run-as-root -np 2 "$BIN" "${ARGS[@]}" --json "$tmp/${model}_two_$rep.json" > "$tmp/${model}_two_$rep.log"
    e=$(date +%s%N); echo "$(( (e - s) / 1000000 ))e-3" > "$tmp/${model}_two_$rep.wall"
  done
done
python3 - "$tmp" "$EPOCHS" "$MODELS" > "$OUT" <<'EOF'
import json, sys
d, epochs, models = sys.argv[1], sys.argv[2], sys.argv[3].split()
def load(m, k, r):
    j = json.load(open(f"{d}/{m}_{k}_{r}.json"))
    j["wall"] = float(open(f"{d}/{m}_{k}_{r}.wall").read())
    return j
names = {"mf": "MF-ANS", "lightgcn": "LightGCN-ANS (L = 3, mean readout; 2 ranks: the bipartite chains)"}
print(f"Gowalla, recbole preset (batch 2048, K = 16, --mode fixed: the squared regulariser splits over shards), {epochs} epochs, seed 0; "
      "1 process x 1 thread against mpirun -np 2 x 1 thread, alternated twice per model (benchmarks/dist_speedup.sh). "
      "MF: lazy Adam, sparse row exchange; LightGCN: Adam, each rank owns one side's rows.\n")
for m in models:
    one = [load(m, "one", r) for r in (1, 2)]
    two = [load(m, "two", r) for r in (1, 2)]
    print(f"### {names[m]}\n")
    print("| run | ranks | s/epoch (median) | Recall@20 | NDCG@20 | wall s | peak RSS rank 0 (MB) | bytes sent/step (rank 0) | rows sent/step | union rows/step | exchange ms/step |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for name, runs in (("1 process", one), ("2 ranks", two)):
        for i, j in enumerate(runs):
            ex = j.get("exchange", {})
            print(f"| {name} #{i+1} | {j['ranks']} | {j['train_seconds_per_epoch']:.2f} | {j['test']['Recall@20']:.5f} | "
                  f"{j['test']['NDCG@20']:.5f} | {j['wall']:.1f} | {j['peak_rss_mb']:.0f} | "
                  f"{ex.get('bytes_sent_per_step', 0):.0f} | {ex.get('rows_sent_per_step', 0):.0f} | "
                  f"{ex.get('rows_union_per_step', 0):.0f} | {1e3 * ex.get('seconds_per_step', 0):.2f} |")
    for i in range(2):
        print(f"\nspeed-up, pair {i+1}: {one[i]['train_seconds_per_epoch'] / two[i]['train_seconds_per_epoch']:.2f}x per epoch; "
              f"|ΔRecall@20| = {abs(one[i]['test']['Recall@20'] - two[i]['test']['Recall@20']):.2e}, "
              f"|ΔNDCG@20| = {abs(one[i]['test']['NDCG@20'] - two[i]['test']['NDCG@20']):.2e}")
    print()
EOF
cat "$OUT"
