"""margin.AccuracyCalculator vs pytorch-metric-learning's on the same arrays, same run.

    PYTHONPATH=/tmp/margin-wheel /work/.cache/peers-venv/bin/python bench_accuracy.py [--n 100000] [--threads 2]
        [--sides margin,pml,cli] [--margin-bin target/release/margin] [--k max_bin_count|100]

N × 128 float32 embeddings of 1,000 classes (seeded; written once as .npy under a temporary
folder, so every side reads the same arrays), k = "max_bin_count", P@1 / R-Precision / MAP@R.
Each side runs in its own child process under `/usr/bin/time -v` (wall time and peak RSS of
that process, loading included) and also reports the evaluation's own wall time: margin from
Python, PML (faiss-cpu flat index), and the Rust CLI path (`margin eval --no-clustering` on the
same .npy files; it also computes the verification and pair sections, a few percent more
work). `uptime`'s load is printed, since the machine is shared. Also times loss calls at
B = --loss-batch from Python against the Rust side's own wall time of the same call
(`stats["seconds"]`: tensor in, forward, backward, gradient out), i.e. what the binding adds
(input checks, conversions, the dict).
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

CHILD = r"""
import json, os, resource, sys, time
import numpy as np
folder, side = sys.argv[1], sys.argv[2]
k = sys.argv[3] if sys.argv[3] == "max_bin_count" else int(sys.argv[3])
x, labels = np.load(os.path.join(folder, "x.npy")), np.load(os.path.join(folder, "labels.npy"))
include = ("precision_at_1", "r_precision", "mean_average_precision_at_r")
ru = resource.getrusage(resource.RUSAGE_SELF)
cpu0 = ru.ru_utime + ru.ru_stime
t = time.perf_counter()
if side == "margin":
    import margin
    acc = margin.AccuracyCalculator(include=include, k=k).get_accuracy(x, labels)
else:
    import torch
    from pytorch_metric_learning.utils.accuracy_calculator import AccuracyCalculator
    acc = AccuracyCalculator(include=include, k=k, device=torch.device("cpu")).get_accuracy(x, labels)
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


def write_arrays(folder, n, dim, classes):
    """The seeded arrays every side reads (the generator of the earlier runs of this script)."""
    import numpy as np

    rng = np.random.default_rng(0)
    labels = rng.integers(0, classes, size=n)
    centres = rng.normal(size=(classes, dim)).astype(np.float32)
    x = (centres[labels] + 1.5 * rng.normal(size=(n, dim)).astype(np.float32)).astype(np.float32)
    np.save(os.path.join(folder, "x.npy"), x)
    np.save(os.path.join(folder, "labels.npy"), labels.astype(np.int64))


def timed(cmd, env):
    """Runs `cmd` under `/usr/bin/time -v`: (completed process, wall s, peak RSS MB, CPU s)."""
    out = subprocess.run(["/usr/bin/time", "-v", *cmd], env=env, capture_output=True, text=True)
    field = lambda name: next((line.split(": ", 1)[1] for line in out.stderr.splitlines() if line.strip().startswith(name)), "nan")
    wall = field("Elapsed (wall clock) time")
    secs = sum(float(p) * 60 ** i for i, p in enumerate(reversed(wall.split(":")))) if wall != "nan" else float("nan")
    cpu = float(field("User time (seconds)")) + float(field("System time (seconds)"))
    return out, secs, float(field("Maximum resident set size")) / 1024, cpu


def cli_side(folder, margin_bin, threads, env):
    cmd = [margin_bin, "eval", "--embeddings", os.path.join(folder, "x.npy"), "--labels", os.path.join(folder, "labels.npy"), "--no-clustering", "--threads", str(threads), "--json"]
    t = time.perf_counter()
    out, wall, rss, cpu = timed(cmd, env)
    secs = time.perf_counter() - t
    if out.returncode != 0:
        return None, out.stderr[-2000:]
    report = json.loads(out.stdout)
    rt = report.get("retrieval", report)
    keys = {"precision_at_1": "precision_at_1", "r_precision": "r_precision", "mean_average_precision_at_r": "map_at_r"}
    return {"side": "cli", "seconds": secs, "process_wall_s": wall, "process_cpu_s": cpu, "process_peak_rss_mb": rss, **{k: rt.get(v) for k, v in keys.items()}}, None


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=100_000)
    ap.add_argument("--k", default="max_bin_count", help='neighbours per query: "max_bin_count" (PML\'s) or a number (the CLI side always uses max_bin_count)')
    ap.add_argument("--dim", type=int, default=128)
    ap.add_argument("--classes", type=int, default=1000)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--sides", default="margin,pml")
    ap.add_argument("--loss-batch", type=int, default=1024)
    ap.add_argument("--margin-bin", default=os.path.join(os.path.dirname(os.path.abspath(__file__)), "../../../target/release/margin"))
    args = ap.parse_args()
    env = dict(os.environ, RAYON_NUM_THREADS=str(args.threads), OMP_NUM_THREADS=str(args.threads))
    print("load:", os.getloadavg())
    with tempfile.TemporaryDirectory() as folder:
        write_arrays(folder, args.n, args.dim, args.classes)
        for side in args.sides.split(","):
            if side == "cli":
                line, err = cli_side(folder, args.margin_bin, args.threads, env)
                print(json.dumps(line) if line else f"cli failed: {err}")
                continue
            out, wall, rss, cpu = timed([sys.executable, "-c", CHILD, folder, side, args.k], env)
            if out.returncode != 0:
                print(side, "failed:", out.stderr[-2000:])
                continue
            line = json.loads(out.stdout.strip().splitlines()[-1])
            print(json.dumps({**line, "process_wall_s": wall, "process_cpu_s": cpu, "process_peak_rss_mb": rss}))
    if args.loss_batch:
        out = subprocess.run([sys.executable, "-c", LOSS, str(args.loss_batch), "5"], env=env, capture_output=True, text=True)
        print("loss seconds per call (Python):", out.stdout.strip() or out.stderr[-2000:])
    print("load:", os.getloadavg())


if __name__ == "__main__":
    main()
