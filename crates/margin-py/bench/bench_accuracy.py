"""margin.AccuracyCalculator vs pytorch-metric-learning's on the same arrays, same run.

    PYTHONPATH=/tmp/margin-wheel /work/.cache/peers-venv/bin/python bench_accuracy.py [--n 100000] [--threads 2]

N × 128 float32 embeddings of 1,000 classes (seeded), k = "max_bin_count", P@1 / R-Precision /
MAP@R. Each side runs in its own child process (so peak RSS is its own: ru_maxrss, the data
included), margin first, then PML (faiss-cpu flat index); `uptime`'s load is printed, since
the machine is shared. Also times loss calls at B = --loss-batch from Python against the Rust
side's own wall time of the same call (`stats["seconds"]`: tensor in, forward, backward,
gradient out), i.e. what the binding adds (input checks, conversions, the dict).
"""

import argparse
import json
import os
import subprocess
import sys
import time

CHILD = r"""
import json, os, resource, sys, time
import numpy as np
n, dim, classes, side = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
rng = np.random.default_rng(0)
labels = rng.integers(0, classes, size=n)
centres = rng.normal(size=(classes, dim)).astype(np.float32)
x = (centres[labels] + 1.5 * rng.normal(size=(n, dim)).astype(np.float32)).astype(np.float32)
include = ("precision_at_1", "r_precision", "mean_average_precision_at_r")
ru = resource.getrusage(resource.RUSAGE_SELF)
cpu0 = ru.ru_utime + ru.ru_stime
t = time.perf_counter()
if side == "margin":
    import margin
    acc = margin.AccuracyCalculator(include=include, k="max_bin_count").get_accuracy(x, labels)
else:
    import torch
    from pytorch_metric_learning.utils.accuracy_calculator import AccuracyCalculator
    acc = AccuracyCalculator(include=include, k="max_bin_count", device=torch.device("cpu")).get_accuracy(x, labels)
secs = time.perf_counter() - t
ru = resource.getrusage(resource.RUSAGE_SELF)
cpu = ru.ru_utime + ru.ru_stime - cpu0
print(json.dumps({"side": side, "seconds": secs, "cpu_seconds": cpu, "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, **acc}))
"""

LOSS = r"""
import json, sys, time
import numpy as np
import margin.losses as L, margin.miners as M
b, reps = int(sys.argv[1]), int(sys.argv[2])
rng = np.random.default_rng(0)
x = rng.normal(size=(b, 128)).astype(np.float32)
y = rng.integers(0, b // 8, size=b)
out = {}
for name, loss in [("triplet all", L.TripletMarginLoss(margin=0.2)), ("triplet batch-hard", L.TripletMarginLoss(margin=0.2, miner=M.BatchHardMiner()))]:
    loss(x, y)
    total = rust = 0.0
    for _ in range(reps):
        t = time.perf_counter()
        _, _, stats = loss(x, y)
        total += time.perf_counter() - t
        rust += stats["seconds"]
    out[name] = {"python_s": total / reps, "rust_s": rust / reps, "overhead": total / rust - 1}
print(json.dumps(out))
"""


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=100_000)
    ap.add_argument("--dim", type=int, default=128)
    ap.add_argument("--classes", type=int, default=1000)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--sides", default="margin,pml")
    ap.add_argument("--loss-batch", type=int, default=1024)
    args = ap.parse_args()
    env = dict(os.environ, RAYON_NUM_THREADS=str(args.threads), OMP_NUM_THREADS=str(args.threads))
    print("load:", os.getloadavg())
    for side in args.sides.split(","):
        out = subprocess.run([sys.executable, "-c", CHILD, str(args.n), str(args.dim), str(args.classes), side], env=env, capture_output=True, text=True)
        if out.returncode != 0:
            print(side, "failed:", out.stderr[-2000:])
            continue
        print(out.stdout.strip().splitlines()[-1])
    if args.loss_batch:
        out = subprocess.run([sys.executable, "-c", LOSS, str(args.loss_batch), "5"], env=env, capture_output=True, text=True)
        print("loss seconds per call (Python):", out.stdout.strip() or out.stderr[-2000:])
    print("load:", os.getloadavg())


if __name__ == "__main__":
    main()
