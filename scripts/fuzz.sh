#!/usr/bin/env bash
# libFuzzer (clang from Debian) on the three dataset readers, the .npy reader and the checkpoint manifest
# (tests/fuzz/harness.hpp), under ASan + UBSan, for a fixed time per target.
#
#   scripts/fuzz.sh [SECONDS_PER_TARGET (60)] [TARGETS ("lightgcn recbole rechorus npy manifest")]
#
# Seeds: tests/fuzz/corpus/<target>/ (hand-made inputs and the inputs that once failed) plus, when
# ANS_DATA_DIR holds the shared data, the first 200 lines of its files (copied into build-fuzz/, never into
# the repo). The working corpus lives in build-fuzz/corpus/<target>/. A crash, a sanitizer report or an escaped
# exception is saved as tests/fuzz/corpus/<target>/crash-<sha1> (a new regression input that
# test_fuzz_corpus.cpp replays) and the script fails. Prints one line per target with the number of executions.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
SECS="${1:-60}"
TARGETS="${2:-lightgcn recbole rechorus npy manifest}"
DATA="${ANS_DATA_DIR:-$ROOT/../shared/data}"
scripts/deps.sh clang-14 libeigen3-dev
CXX=clang++-14
OUT=build-fuzz
mkdir -p "$OUT"
FLAGS="-std=c++17 -O1 -g -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined -DANS_NO_ISA_NOTICE"
INC="-I$ROOT/include -I/usr/include/eigen3"
seed() {  # seed TARGET: the repo's corpus, plus slices of the shared data
  local t=$1 c="$OUT/corpus/$1"
  mkdir -p "$c"
  cp tests/fuzz/corpus/"$t"/* "$c"/ 2>/dev/null || true
  [ -d "$DATA" ] || return 0
  case $t in
    lightgcn) for f in "$DATA"/gowalla/train.txt "$DATA"/amazon_beauty/test.txt; do
                [ -f "$f" ] && head -n 200 "$f" > "$c/shared_$(basename "$(dirname "$f")")_$(basename "$f")"; done ;;
    recbole) [ -f "$DATA/ml-100k/ml-100k.inter" ] && head -n 200 "$DATA/ml-100k/ml-100k.inter" > "$c/shared_ml100k" ;;
    rechorus) for s in 0 1 2; do
                f="$DATA/grocery_and_gourmet_food/$( [ $s = 0 ] && echo train || ([ $s = 1 ] && echo dev || echo test)).csv"
                [ -f "$f" ] && { printf "\\x0$s"; head -n 50 "$f"; } > "$c/shared_grocery_$s"; done ;;
  esac
  return 0
}
fail=0
for t in $TARGETS; do
  bin="$OUT/fuzz_$t"
  $CXX $FLAGS $INC -DANS_FUZZ_TARGET="$t" tests/fuzz/fuzz_main.cpp -o "$bin"
  seed "$t"
  art="$OUT/artifacts/$t"
  mkdir -p "$art"
  # text readers: inputs of up to 4 KB (a few hundred lines) reach every branch of a line parser; longer ones
  # only repeat lines and divide the executions per second (64 KB inputs ran at 670/s against 5,000+/s)
  case $t in npy|manifest) max_len=65536 ;; *) max_len=4096 ;; esac
  set +e
  ASAN_OPTIONS="detect_leaks=1:allocator_may_return_null=0:malloc_limit_mb=2048" UBSAN_OPTIONS="print_stacktrace=1" \
    "$bin" -max_total_time="$SECS" -rss_limit_mb=2560 -max_len=$max_len -timeout=10 -print_final_stats=1 \
    -artifact_prefix="$art/" "$OUT/corpus/$t" > "$OUT/fuzz_$t.log" 2>&1
  rc=$?
  set -e
  runs=$(grep -o "stat::number_of_executed_units: *[0-9]*" "$OUT/fuzz_$t.log" | grep -o "[0-9]*$" || echo "?")
  echo "fuzz $t: $runs executions in ${SECS}s, exit $rc"
  if [ $rc -ne 0 ] || ls "$art"/crash-* "$art"/leak-* "$art"/oom-* "$art"/timeout-* > /dev/null 2>&1; then
    fail=1
    for f in "$art"/crash-* "$art"/leak-* "$art"/oom-* "$art"/timeout-*; do
      [ -f "$f" ] && cp "$f" "tests/fuzz/corpus/$t/" && echo "  saved $(basename "$f") into tests/fuzz/corpus/$t/" >&2
    done
    grep -m 5 -E "ERROR|runtime error|terminate|SUMMARY" "$OUT/fuzz_$t.log" >&2 || true
  fi
done
exit $fail
