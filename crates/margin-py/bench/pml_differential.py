"""Differential test of margin.AccuracyCalculator against pytorch-metric-learning's.

Run where PML is installed (the peers venv, ../shared/peers/setup.sh) with the margin wheel
importable, e.g.:

    pip install --target /tmp/margin-wheel ../../../.cache/margin-ci/wheels/margin-*.whl
    PYTHONPATH=/tmp/margin-wheel /work/.cache/peers-venv/bin/python pml_differential.py --cases 300

Random float32 embeddings and labels over many seeds and settings (self-retrieval, a separate
reference with lone queries, ref_includes_query, k in {None, "max_bin_count", int < and > the
largest class}, avg_of_avgs, return_per_class); every kNN metric compared to 1e-6 (NaN = NaN).
NMI/AMI are left out: both sides run k-means with their own seeding (documented).
Exits non-zero on any disagreement and prints the case.
"""

import argparse
import logging
import math
import sys

import numpy as np
import torch
from pytorch_metric_learning.utils.accuracy_calculator import AccuracyCalculator as PML

import margin

KNN = ("precision_at_1", "r_precision", "mean_average_precision_at_r", "mean_average_precision", "mean_reciprocal_rank")


def same(a, b, tol):
    if isinstance(a, list):
        return isinstance(b, list) and len(a) == len(b) and all(same(x, y, tol) for x, y in zip(a, b))
    if math.isnan(a) or math.isnan(b):
        return math.isnan(a) and math.isnan(b)
    return abs(a - b) <= tol


def near_tie_only(call, k, rel=1e-5):
    """Whether faiss's and margin's float32 neighbour lists differ only where two references'
    exact (float64) distances to the query agree to `rel`: a float32 rounding near-tie, which
    either side may order either way (faiss is exactly as often the one that is wrong)."""
    import faiss

    q = call["query"]
    r = call.get("reference", q)
    ql = call["query_labels"]
    rl = call.get("reference_labels", ql)
    index = faiss.IndexFlatL2(q.shape[1])
    index.add(r)
    _, fi = index.search(q, k + 1)
    mi, _ = margin.knn(q, r, k + 1, distance="squared-euclidean")
    for i in range(len(q)):
        for j in np.flatnonzero(fi[i] != mi[i]):
            a, b = fi[i][j], mi[i][j]
            if rl[a] == rl[b]:
                continue  # same label: the metrics cannot see the swap
            da = ((q[i].astype(np.float64) - r[a]) ** 2).sum()
            db = ((q[i].astype(np.float64) - r[b]) ** 2).sum()
            if abs(da - db) > rel * max(da, db):
                return False
    return True


def diff(a, b):
    if isinstance(a, list):
        return max((diff(x, y) for x, y in zip(a, b)), default=0.0)
    if math.isnan(a) or math.isnan(b):
        return 0.0
    return abs(a - b)


def case(seed):
    rng = np.random.default_rng(seed)
    n_classes = int(rng.integers(2, 12))
    dim = int(rng.integers(2, 24))
    n = int(rng.integers(10, 400))
    labels = rng.integers(0, n_classes, size=n)
    centres = rng.normal(size=(n_classes, dim)) * float(rng.uniform(0.2, 3))
    x = (centres[labels] + rng.normal(size=(n, dim))).astype(np.float32)
    mode = ["self", "reference", "includes"][seed % 3]
    k_choice = [None, "max_bin_count", int(rng.integers(1, 6)), int(rng.integers(20, 60))][(seed // 3) % 4]
    avg = ["plain", "avg_of_avgs", "per_class"][(seed // 12) % 3]
    kw = dict(include=KNN, k=k_choice, avg_of_avgs=avg == "avg_of_avgs", return_per_class=avg == "per_class")
    if mode == "self":
        call = dict(query=x, query_labels=labels)
    elif mode == "reference":
        m = int(rng.integers(10, 400))
        # labels 0..n_classes+2: some query classes are missing from the reference (lone queries)
        rl = rng.integers(2, n_classes + 2, size=m)
        r = (np.concatenate([centres, rng.normal(size=(2, dim))])[np.minimum(rl, n_classes + 1)] + rng.normal(size=(m, dim))).astype(np.float32)
        call = dict(query=x, query_labels=labels, reference=r, reference_labels=rl)
    else:
        nq = max(2, n // 3)
        call = dict(query=x[:nq], query_labels=labels[:nq], reference=x, reference_labels=labels, ref_includes_query=True)
    return kw, call, dict(seed=seed, mode=mode, k=k_choice, avg=avg, n=n, dim=dim, classes=n_classes)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--cases", type=int, default=300)
    ap.add_argument("--tol", type=float, default=1e-6)
    args = ap.parse_args()
    logging.getLogger("PML").setLevel(logging.ERROR)
    logging.getLogger("margin").setLevel(logging.ERROR)
    bad = compared = skipped = ties = 0
    worst = 0.0
    for seed in range(args.cases):
        kw, call, info = case(seed)
        pml = PML(device=torch.device("cpu"), **kw)
        ours = margin.AccuracyCalculator(**kw)
        try:
            want = pml.get_accuracy(**call)
        except Exception as e:  # PML cannot run this setting (e.g. k beyond the reference)
            try:
                ours.get_accuracy(**call)
                print(f"note: PML raised {type(e).__name__} and margin did not: {info}")
            except ValueError:
                pass
            skipped += 1
            continue
        nref = len(call.get("reference", call["query"]))
        k_needed = kw["k"] if isinstance(kw["k"], int) else 0
        if k_needed > nref - int(call.get("ref_includes_query", call.get("reference") is None)):
            # PML pads with faiss's -1 indices; margin refuses (documented)
            try:
                ours.get_accuracy(**call)
                print(f"MISMATCH: margin accepted k beyond the reference: {info}")
                bad += 1
            except ValueError:
                skipped += 1
            continue
        got = ours.get_accuracy(**call)
        differing = [m for m in KNN if not same(got[m], want[m], args.tol)]
        compared += len(KNN)
        if differing:
            nref = len(call.get("reference", call["query"]))
            k_used = nref - 1 if kw["k"] is None else (kw["k"] if isinstance(kw["k"], int) else 60)
            if near_tie_only(call, min(k_used, nref - 1)):
                ties += 1
                print(f"near-tie (float32 rounding) in {info}: {differing} differ by up to {max(diff(got[m], want[m]) for m in differing):.3g}")
            else:
                bad += len(differing)
                for m in differing:
                    print(f"MISMATCH {m}: margin {got[m]} PML {want[m]} in {info}")
        for m in KNN:
            if m not in differing:
                worst = max(worst, diff(got[m], want[m]))
    print(f"{args.cases} cases, {compared} metric values compared: {bad} mismatches, {ties} cases differing only by float32 near-ties, "
          f"{skipped} cases skipped (k beyond the reference); max |diff| elsewhere {worst:.3g}")
    sys.exit(1 if bad else 0)


if __name__ == "__main__":
    main()
