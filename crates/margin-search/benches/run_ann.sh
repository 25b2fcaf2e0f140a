#!/usr/bin/env bash
# The ANN comparison in one run (same data, same machine state): ann_anchor.py's exact data
# written as .npy, margin's bench_ann on it, then ann_anchor.py itself (faiss + hnswlib).
# usage: bash run_ann.sh N OUT.jsonl [PRECISIONS]   (needs a venv with numpy faiss-cpu hnswlib:
#   python3 -m venv /tmp/annvenv && /tmp/annvenv/bin/pip install numpy faiss-cpu hnswlib)
set -euo pipefail
N=${1:-1000000}; OUT=${2:-ann-$N.jsonl}; PREC=${3:-f32,f16,i8}
PY=${PY:-/tmp/annvenv/bin/python}; DATA=${DATA:-/tmp/anndata}
HERE=$(cd "$(dirname "$0")" && pwd); ROOT=$(cd "$HERE/../../.." && pwd)
mkdir -p "$DATA"
[ -f "$DATA/base_$N.npy" ] || "$PY" "$HERE/ann_data.py" "$N" "$DATA"
echo "# $(date -u +%FT%TZ) N=$N load: $(cut -d' ' -f1-3 /proc/loadavg)" | tee -a "$OUT"
"$ROOT/target/release/bench_ann" --base "$DATA/base_$N.npy" --queries "$DATA/queries_$N.npy" --threads 2 --precision "$PREC" | tee -a "$OUT"
"$PY" "$ROOT/../shared/peers/ann_anchor.py" "$N" --libs faiss,hnswlib | tee -a "$OUT"
echo "# done $(date -u +%FT%TZ) load: $(cut -d' ' -f1-3 /proc/loadavg)" | tee -a "$OUT"
