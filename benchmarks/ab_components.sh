#!/usr/bin/env bash
# Side-by-side Google Benchmark runs of two bench_components binaries (e.g. built from the last commit and from
# this checkout), interleaved run by run so both see the same machine; prints each binary's median real time per
# benchmark and the same-run ratio NEW/OLD.
#
#   benchmarks/ab_components.sh OLD_BENCH NEW_BENCH [FILTER]
# Env: REPS (4), MIN_TIME (2 s per benchmark and run). FILTER defaults to the fused ANS loss, 1 thread.
# Build the old binary from a worktree:  git worktree add /tmp/ans_old HEAD~1 && cmake -S /tmp/ans_old -B
# /tmp/ans_old_build -DANS_BUILD_TESTS=OFF -DANS_BUILD_EXAMPLES=OFF && cmake --build /tmp/ans_old_build --target bench_components
set -euo pipefail
OLD="$1"
NEW="$2"
FILTER="${3:-BM_composite/1}"
REPS="${REPS:-4}"
MIN_TIME="${MIN_TIME:-2}"
CSV="$(mktemp)"
trap 'rm -f "$CSV"' EXIT
for _ in $(seq 1 "$REPS"); do
  for v in old new; do
    B="$OLD"; [[ $v == new ]] && B="$NEW"
    "$B" --benchmark_filter="$FILTER" --benchmark_min_time="$MIN_TIME" --benchmark_format=csv 2>/dev/null |
      grep '^"BM_' | sed "s/^/$v,/" >> "$CSV"
  done
done
/usr/bin/python3 - "$CSV" <<'PY'
import csv, statistics, sys
runs = {}
for row in csv.reader(open(sys.argv[1])):
    runs.setdefault(row[1], {"old": [], "new": []})[row[0]].append(float(row[3]))
print("| benchmark | old ms (median) | new ms (median) | new / old |")
print("|---|---|---|---|")
for name, r in runs.items():
    o, n = statistics.median(r["old"]), statistics.median(r["new"])
    print(f"| {name} | {o:.3f} | {n:.3f} | {n / o:.3f} |")
PY
