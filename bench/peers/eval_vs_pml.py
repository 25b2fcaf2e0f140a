"""Cross-check of `margin eval` against pytorch-metric-learning's AccuracyCalculator (faiss exact
search, k = max_bin_count, query = reference) on seeded clustered data with classes of 2..29.

Run with the peers venv:  $HOME/.cache/peers-venv/bin/python bench/peers/eval_vs_pml.py [path/to/margin]
Measured 2026-11-28: P@1, R-Precision and MAP@R equal to 1e-15 (N = 576, 40 classes).
"""
import json, subprocess, sys
import numpy as np, torch
from pytorch_metric_learning.utils.accuracy_calculator import AccuracyCalculator
rng = np.random.default_rng(5)
C, D = 40, 16
sizes = rng.integers(2, 30, C)
labels = np.concatenate([np.full(s, c) for c, s in enumerate(sizes)]).astype(np.int64)
centres = rng.normal(size=(C, D))
emb = (centres[labels] + 1.3 * rng.normal(size=(len(labels), D))).astype(np.float32)
import tempfile, os; d = tempfile.mkdtemp(); E, L = os.path.join(d, "e.npy"), os.path.join(d, "l.npy"); np.save(E, emb); np.save(L, labels)
calc = AccuracyCalculator(include=("precision_at_1", "r_precision", "mean_average_precision_at_r"), k="max_bin_count")
x = torch.tensor(emb)
pml = calc.get_accuracy(x, torch.tensor(labels), ref_includes_query=True)
out = subprocess.run([sys.argv[1] if len(sys.argv) > 1 else "target/release/margin", "eval", "--embeddings", E, "--labels", L, "--json", "--no-clustering"], capture_output=True, text=True)
r = json.loads(out.stdout)
def find(v, key):
    if isinstance(v, dict):
        if key in v and isinstance(v[key], (int, float)): return v[key]
        for x in v.values():
            f = find(x, key)
            if f is not None: return f
    if isinstance(v, list):
        for x in v:
            f = find(x, key)
            if f is not None: return f
print(json.dumps({"N": len(labels), "pml": pml, "margin": {k: find(r, k) for k in ["precision_at_1", "r_precision", "map_at_r"]}}, indent=1))
