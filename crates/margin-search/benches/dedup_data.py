"""The dedup benchmark's data (issue 13: `margin dedup` on 100,000 items in under a minute):
ann_data.py's base of N rows, its first N - P rows plus P planted near-duplicates (a seeded
choice of those rows + N(0, 0.05^2) noise; nearest different items are ~25 apart), and the
planted pairs as ids. python dedup_data.py BASE.npy P OUTDIR ->
OUTDIR/e.npy, OUTDIR/ids.txt (row numbers), OUTDIR/planted.tsv (original<TAB>copy)
Then: RAYON_NUM_THREADS=2 /usr/bin/time -v margin dedup --embeddings OUTDIR/e.npy
--ids OUTDIR/ids.txt --threshold 2.0 --out OUTDIR/groups.json --quiet; dedup_score.py scores it."""
import sys, numpy as np
base, P, out = sys.argv[1], int(sys.argv[2]), sys.argv[3]
X = np.load(base)
N = len(X)
rng = np.random.default_rng(1)
keep = X[: N - P]
src = rng.choice(N - P, size=P, replace=False)
copies = keep[src] + rng.standard_normal((P, X.shape[1])).astype(np.float32) * 0.05
E = np.ascontiguousarray(np.concatenate([keep, copies]).astype(np.float32))
np.save(f"{out}/e.npy", E)
with open(f"{out}/ids.txt", "w") as f:
    f.write("".join(f"{i}\n" for i in range(N)))
with open(f"{out}/planted.tsv", "w") as f:
    f.write("".join(f"{s}\t{N - P + j}\n" for j, s in enumerate(src)))
