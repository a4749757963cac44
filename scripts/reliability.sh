#!/usr/bin/env bash
# Bad inputs and what each gets (issue 15): every case of the issue's "Found" list is run against the built
# programs, and the script fails unless each one exits with the expected code (2: bad flag, 1: bad data or
# checkpoint; never a crash, never 0) and prints a one-line error that contains the expected words.
# Prints the markdown table of docs/reliability.md.
#
#   scripts/reliability.sh [BIN_DIR (build/examples)] > table.md
set -euo pipefail
BIN="${1:-build/examples}"
TRAIN="$BIN/ans-train"
STATS="$BIN/ans-stats"
T=$(mktemp -d /tmp/ans_reliability.XXXXXX)
trap 'rm -rf "$T"' EXIT
fail=0
echo "| input | program | exit | message (paths shortened) |"
echo "|---|---|---|---|"
# row DESCRIPTION EXPECTED_RC EXPECTED_SUBSTRING COMMAND...
row() {
  local desc="$1" want_rc="$2" want="$3"
  shift 3
  set +e
  local err
  err=$("$@" 2>&1 >/dev/null)
  local rc=$?
  set -e
  local first
  first=$(printf '%s\n' "$err" | grep -v '^$' | tail -n 1 | sed "s|$T/||g; s|/work/[^ :]*/include/|include/|g; s/|/\\\\|/g")
  local prog
  prog=$(basename "$1")
  case "$prog" in load | bash) prog=ans-train ;; esac  # the checkpoint cases run ans-train --load
  echo "| $desc | \`$prog\` | $rc | $first |"
  if [ "$rc" -ne "$want_rc" ] || ! grep -qF -- "$want" <<<"$err"; then
    echo "reliability: '$desc': exit $rc (expected $want_rc), message '$first' (expected to contain '$want')" >&2
    fail=1
  fi
}

# --- 1-2. checkpoints -------------------------------------------------------------------------------------
"$TRAIN" --epoch 1 --quiet --save "$T/ck" > /dev/null
cp -r "$T/ck" "$T/ck.orig"
restore() { rm -rf "$T/ck"; cp -r "$T/ck.orig" "$T/ck"; }
load() { "$TRAIN" --epoch 2 --quiet --load "$T/ck" "$@"; }
edit_manifest() { /usr/bin/python3 -c "import sys; p=sys.argv[1]; s=open(p).read(); open(p,'w').write(s.replace(sys.argv[2], sys.argv[3], 1))" "$T/ck/manifest.json" "$1" "$2"; }
E0=$(ls "$T/ck"/E0.g*.npy)
edit_npy() { /usr/bin/python3 -c "
import sys
p, a, b = sys.argv[1:4]
d = open(p, 'rb').read()
if a == 'APPEND': d = d + b.encode()
elif a == 'NAN':
    import struct
    h = d.index(b'\n') + 1
    d = d[:h] + struct.pack('<f', float('nan')) * ((len(d) - h) // 4)
else: d = d.replace(a.encode(), b.encode(), 1)
open(p, 'wb').write(d)" "$E0" "$1" "$2"; }
row "checkpoint: one flipped value in E0" 1 "checksum" bash -c "
  /usr/bin/python3 -c \"p='$E0'; d=bytearray(open(p,'rb').read()); d[-1]^=0x40; open(p,'wb').write(bytes(d))\"; $(printf %q "$TRAIN") --epoch 2 --quiet --load $(printf %q "$T/ck")"
restore; edit_npy NAN x
row "checkpoint: all-NaN E0 (checksum not updated)" 1 "checksum" load
restore; edit_npy "'descr': '<f4'" "'descr': '<i4'"
row "checkpoint: <f4 data relabelled <i4" 1 "dtype <i4, the manifest says <f4" load
restore; edit_npy "(3500, 64)" "(64, 3500)"
row "checkpoint: E0 shape transposed (same count)" 1 "shape (64, 3500), the manifest says (3500, 64)" load
restore; edit_npy APPEND "junk"
row "checkpoint: trailing bytes after E0" 1 "4 trailing bytes" load
restore; edit_manifest '"format": "ans-checkpoint"' '"format": "x"'
row "manifest: wrong format" 1 '"format" must be "ans-checkpoint"' load
restore; edit_manifest '"version": 2' '"version": 7'
row "manifest: unknown version" 1 "checkpoint version 7" load
restore; edit_manifest '"epochs_done": 1' '"epochs_done": -7'
row "manifest: epochs_done = -7" 1 "expected an integer in [0, 1000000000]" load
restore; edit_manifest '"epochs_done": 1' '"epochs_done": 1e300'
row "manifest: epochs_done = 1e300" 1 "expected an integer in [0, 1000000000]" load
restore; edit_manifest '"epochs_done": 1' '"epochs_done": 4294967297'
row "manifest: epochs_done = 4294967297" 1 "expected an integer in [0, 1000000000]" load
restore; edit_manifest '"epochs_done": 1' '"epochs_done": 1, "epochs_done": 2'
row "manifest: duplicate key" 1 "duplicate key" load
restore; edit_manifest '"scalar": "float32"' '"scalar": "float64"'
row "manifest: another scalar type" 1 "the scalar type is" load
restore; edit_manifest '"seed": 0' '"seed": 5'
row "manifest: another seed" 1 "the seed is 5, this run's is 0" load
restore; edit_manifest '"name": "W_u"' '"name": "W_x"'
row "manifest: an array missing" 1 "no array 'W_u'" load
restore
row "an ANS checkpoint into a DNS run" 1 'the sampler is "ANS", this run'"'"'s is "DNS"' load --model_name DNS
row "an ANS checkpoint into a BPRMF run" 1 'the sampler is "ANS"' load --model_name BPRMF
row "a folder that is not a checkpoint" 1 "is not a folder" "$TRAIN" --epoch 1 --quiet --load "$T/none"

# --- 3. .npy headers (through a checkpoint's E0) -------------------------------------------------------------
for shape in "(4294967296, 4294967296, 16)" "(99999999999999999999,)" "(1000000000000,)" "(1e12,)"; do
  restore; edit_npy "(3500, 64)" "$shape"
  case "$shape" in
    *16\)) want="elements" ;; "(9"*) want="dimension above" ;; "(1e"*) want="malformed shape" ;; *) want="truncated" ;;
  esac
  row ".npy shape $shape" 1 "$want" load
done

# --- 4. command-line numbers ---------------------------------------------------------------------------------
for a in "--emb_size 4294967297" "--test_all 4294967297" "--epoch 4294967297" "--n_layers 4294967297" \
         "--eval_every 4294967297" "--max_batches 4294967297" "--num_neg 4294967297" "--topk 5,4294967297" \
         "--early_stop -1" "--random_seed -1"; do
  row "\`$a\`" 2 "outside the valid range" "$TRAIN" $a --epoch 1 --quiet
done
for a in "--gamma -1" "--eps -1"; do row "\`$a\`" 2 "must be >= 0" "$TRAIN" $a; done
row "\`--json\` into a missing folder" 2 "does not exist" "$TRAIN" --json /nonexistent/r.json
row "\`--save\` into a missing folder" 2 "does not exist" "$TRAIN" --save /nonexistent/ck

# --- 5. ids near INT32_MAX -------------------------------------------------------------------------------------
mkdir -p "$T/ids1" "$T/ids2" "$T/ids3"
for u in $(seq 0 49); do echo "$u 1 2"; done > "$T/ids1/train.txt"
echo "2147483647 1 2" >> "$T/ids1/train.txt"
row "LightGCN: a stray line \`2147483647 1 2\` after 50 users" 1 "ids1/train.txt:51: user id 2147483647 would make a table" "$STATS" "$T/ids1"
printf '0 1 2\n1 2147483647\n' > "$T/ids2/train.txt"
row "LightGCN: item id 2147483647" 1 "ids2/train.txt:2: item id 2147483647" "$STATS" "$T/ids2"
printf '0 1 2\n1 2147483646\n' > "$T/ids3/train.txt"
row "LightGCN: item id 2147483646" 1 "ids3/train.txt:2: item id 2147483646" "$STATS" "$T/ids3"

# --- 6. silently accepted before -------------------------------------------------------------------------------
mkdir -p "$T/rc" "$T/rb" "$T/two"
printf 'user_id\titem_id\ttime\n1\t1\t1\n1\t2\t2\n2\t1\t3\n' > "$T/rc/train.csv"
printf 'user_id\titem_id\ttime\tneg_items\n1\t2\t3\t[]\n' > "$T/rc/dev.csv"
row "ReChorus: dev row with \`[]\` negatives" 1 "rc/dev.csv:2: neg_items is empty" "$STATS" "$T/rc"
printf 'user_id:token\titem_id:token\ttimestamp:float\n1\t2\t5\n1\t3\tnan\n' > "$T/rb/rb.inter"
row "RecBole: \`nan\` timestamp" 1 "rb.inter:3: timestamp 'nan' is not finite" "$STATS" "$T/rb"
printf 'user_id:token\titem_id:token\n1\t2\n' > "$T/two/a.inter"
cp "$T/two/a.inter" "$T/two/b.inter"
row "RecBole: folder with two \`.inter\` files" 1 "2 .inter files in the folder" "$STATS" "$T/two"
exit $fail
