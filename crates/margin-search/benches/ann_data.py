"""Writes ann_anchor.py's exact data (same NumPy generator, seed and construction) as .npy files
for bench_ann: python ann_data.py N OUTDIR -> OUTDIR/base_N.npy, OUTDIR/queries_N.npy"""
import sys, numpy as np
N, out = int(sys.argv[1]), sys.argv[2]
D, C, Q = 128, 1000, 2000
rng = np.random.default_rng(0)
centers = rng.standard_normal((C, D)).astype(np.float32)
lab = rng.integers(0, C, size=N + Q)
X = centers[lab] + rng.standard_normal((N + Q, D)).astype(np.float32) * 1.6
np.save(f"{out}/base_{N}.npy", np.ascontiguousarray(X[:N])); np.save(f"{out}/queries_{N}.npy", np.ascontiguousarray(X[N:]))
