#!/usr/bin/env bash
# Kill stress test of `margin train`'s resume (issue 11, "Nothing silent, nothing lost").
#
# Trains the tiny digits config (configs/digits.toml, 150 epochs: a few seconds, most of it
# checkpoint fsyncs), SIGKILLs `margin train` at random moments, continues with `--resume`
# (or starts the folder again when the kill came before its first checkpoint), and repeats
# until KILLS kills have been dealt; every run that reaches its end is compared with an
# uninterrupted run: the weights (model.safetensors' tensor bytes), train_log.jsonl
# (timings aside) and model.json must be equal, and no temporary file may be left.
#
# Usage: bash bench/kill_stress.sh [KILLS]   (default 40)
# Env: MARGIN (the binary; default target/checked/margin), EPOCHS (150), MAX_DELAY_MS (1500).
set -euo pipefail
cd "$(dirname "$0")/.."
KILLS=${1:-40}
MARGIN=${MARGIN:-target/checked/margin}
EPOCHS=${EPOCHS:-150}
MAX_DELAY_MS=${MAX_DELAY_MS:-1500}
[ -x "$MARGIN" ] || { echo "no binary at $MARGIN: cargo build --profile checked -j2 -p margin-cli" >&2; exit 2; }
CSV=$(realpath ../shared/data/sklearn_digits/digits.csv.gz)
WORK=$(mktemp -d /tmp/margin-kill-stress.XXXXXX)
trap 'rm -rf "$WORK"' EXIT
sed "s#../shared/data/sklearn_digits/digits.csv.gz#$CSV#" configs/digits.toml > "$WORK/digits.toml"
export RAYON_NUM_THREADS=2
train_fresh() { "$MARGIN" train --config "$WORK/digits.toml" --out "$1" -q --epochs "$EPOCHS"; }

echo "uninterrupted run ($EPOCHS epochs)…"
train_fresh "$WORK/full" > /dev/null 2> "$WORK/full.err"

compare() { # run folder → exit status 0 when equal to the uninterrupted run
  python3 - "$WORK/full" "$1" <<'PY'
import json, os, sys
full, run = sys.argv[1], sys.argv[2]
def tensors(d):
    b = open(os.path.join(d, "model.safetensors"), "rb").read()
    n = int.from_bytes(b[:8], "little")
    return b[8 + n:]
def log(d):
    out = []
    for l in open(os.path.join(d, "train_log.jsonl")):
        v = json.loads(l)
        for k in ("seconds", "train_seconds", "images_per_s"):
            v.pop(k, None)
        out.append(v)
    return out
bad = []
if tensors(full) != tensors(run): bad.append("weights")
if log(full) != log(run): bad.append("train_log.jsonl")
if open(os.path.join(full, "model.json"), "rb").read() != open(os.path.join(run, "model.json"), "rb").read(): bad.append("model.json")
for root, dirs, files in os.walk(run):
    for n in dirs + files:
        if n.startswith("."): bad.append("temporary " + os.path.join(root, n))
if bad:
    print("MISMATCH in", run, ":", ", ".join(bad)); sys.exit(1)
PY
}

kills=0 resumes=0 restarts=0 rounds=0 equal=0 mismatches=0 round_kills=0
run="$WORK/run-0"
state=fresh
while [ "$kills" -lt "$KILLS" ]; do
  if [ "$state" = fresh ]; then
    rm -rf "$run"
    "$MARGIN" train --config "$WORK/digits.toml" --out "$run" -q --epochs "$EPOCHS" > /dev/null 2> "$WORK/last.err" &
  else
    "$MARGIN" train --resume "$run" -q > /dev/null 2> "$WORK/last.err" &
  fi
  pid=$!
  delay=$(( (RANDOM * 32768 + RANDOM) % MAX_DELAY_MS + 20 ))
  sleep "$(awk -v ms="$delay" 'BEGIN { printf "%.3f", ms / 1000 }')"
  kill -9 "$pid" 2> /dev/null || true
  rc=0; wait "$pid" 2> /dev/null || rc=$?
  if [ "$rc" -eq 137 ]; then
    kills=$((kills + 1)); round_kills=$((round_kills + 1))
    # Resume when the folder holds a checkpoint, else start it again (the kill came first).
    if [ -e "$run/checkpoint.json" ] || compgen -G "$run/checkpoints/epoch-*" > /dev/null; then
      state=resume; resumes=$((resumes + 1))
    else
      state=fresh; restarts=$((restarts + 1))
    fi
  elif [ "$rc" -eq 0 ]; then
    # It finished before the kill.
    rounds=$((rounds + 1))
    if compare "$run"; then equal=$((equal + 1)); else mismatches=$((mismatches + 1)); fi
    echo "round $rounds: finished after $round_kills kill(s) (kills so far: $kills)"
    round_kills=0
    run="$WORK/run-$rounds"
    state=fresh
  else
    echo "margin train failed (status $rc) after a kill:" >&2; cat "$WORK/last.err" >&2; exit 1
  fi
done
# Finish the last round without kills.
if [ "$state" = resume ]; then
  "$MARGIN" train --resume "$run" -q > /dev/null 2> "$WORK/last.err" || { cat "$WORK/last.err" >&2; exit 1; }
else
  train_fresh "$run" > /dev/null 2> "$WORK/last.err" || { cat "$WORK/last.err" >&2; exit 1; }
fi
rounds=$((rounds + 1))
if compare "$run"; then equal=$((equal + 1)); else mismatches=$((mismatches + 1)); fi
echo "round $rounds: finished after $round_kills kill(s)"
echo "kills: $kills  resumes: $resumes  restarts (killed before the first checkpoint): $restarts  finished runs: $rounds  equal to uninterrupted: $equal  mismatches: $mismatches"
[ "$mismatches" -eq 0 ]
