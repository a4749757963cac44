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
  for d in gowalla amazon_beauty ml-100k grocery_and_gourmet_food; do run "$BIN/ans-stats" "$DATA/$d"; done
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
if [ -x "$BIN/ans-train" ]; then run "$BIN/ans-train" --epoch 2; fi

# Every built example must have been run.
for exe in "$BIN"/ans-*; do
  [ -x "$exe" ] && [ -f "$exe" ] || continue
  name=$(basename "$exe")
  printf '%s\n' "${ran[@]}" | grep -qx "$name" || { echo "example $name has no smoke run" >&2; exit 1; }
done
echo "smoke: ran ${#ran[@]} example invocations"
