#!/usr/bin/env bash
# Open MPI's shared-memory transport for large messages, interleaved on Gowalla: one process against
# `mpirun -np 2` with CMA (process_vm_readv, one copy: Open MPI's default) and with copy-in/out
# (btl_vader_single_copy_mechanism=none, two copies through its shared buffers), REPS times in turn, each run
# one epoch capped at MAXB batches (ans-train extrapolates the epoch time), 1 thread per process.
#
#   benchmarks/dist_transport.sh [MODEL (lightgcn|mf)] [REPS (3)] [MAXB (80)] [OUT (benchmarks/results/issue17/transport_MODEL.md)]
set -euo pipefail
cd "$(dirname "$0")/.."
MODEL="${1:-lightgcn}"
REPS="${2:-3}"
MAXB="${3:-80}"
OUT="${4:-benchmarks/results/issue17/transport_$MODEL.md}"
source benchmarks/mpi_train_build.sh  # Open MPI, build-mpi/ans-train: BIN, DATA
ARGS=(--model_name ANS --mode fixed --dataset gowalla --path "$DATA" --num_workers 1 --epoch 1 --eval_every 1
      --early_stop 0 --random_seed 0 --max_batches "$MAXB")
[ "$MODEL" = lightgcn ] && ARGS+=(--encoder lightgcn --n_layers 3)
tmp=$(mktemp -d /tmp/ans_transport.XXXXXX)
trap 'rm -rf "$tmp"' EXIT
for r in $(seq "$REPS"); do
  "$BIN" "${ARGS[@]}" --json "$tmp/one_$r.json" > /dev/null
  for mech in cma none; do
    OMPI_MCA_btl_vader_single_copy_mechanism=$mech mpirun --oversubscribe --allow-run-as-root -np 2 \
      -x OMPI_MCA_btl_vader_single_copy_mechanism "$BIN" "${ARGS[@]}" --json "$tmp/${mech}_$r.json" > /dev/null
  done
done
python3 - "$tmp" "$MODEL" "$REPS" "$MAXB" > "$OUT" <<'PY'
import json, statistics, sys
d, model, reps, maxb = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
load = lambda n: json.load(open(f"{d}/{n}.json"))
print(f"Gowalla, ANS {'LightGCN L = 3' if model == 'lightgcn' else 'MF'}, --mode fixed, batch 2048, 1 thread per process, "
      f"one epoch capped at {maxb} batches (extrapolated); 1 process, then 2 ranks with CMA, then 2 ranks with copy-in/out, "
      f"{reps} times in turn (benchmarks/dist_transport.sh).\n")
print("| round | 1 process s/epoch | CMA s/epoch | copy-in/out s/epoch | speed-up CMA | speed-up copy-in/out | exchange ms/step by rank, CMA | copy-in/out |")
print("|---|---|---|---|---|---|---|---|")
sc, sn = [], []
for r in range(1, reps + 1):
    o, c, n = load(f"one_{r}"), load(f"cma_{r}"), load(f"none_{r}")
    t = lambda j: j["train_seconds_per_epoch"]
    sc.append(t(o) / t(c)), sn.append(t(o) / t(n))
    ms = lambda j: ", ".join(f"{x:.2f}" for x in j["exchange"]["ms_per_step_by_rank"])
    print(f"| {r} | {t(o):.2f} | {t(c):.2f} | {t(n):.2f} | {sc[-1]:.2f}x | {sn[-1]:.2f}x | {ms(c)} | {ms(n)} |")
print(f"\nmedian speed-up: CMA {statistics.median(sc):.2f}x, copy-in/out {statistics.median(sn):.2f}x")
PY
cat "$OUT"
