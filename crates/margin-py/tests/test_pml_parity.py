"""Where pytorch-metric-learning is importable (the peers venv): margin.AccuracyCalculator equals
PML's on the hand-made sets and on 30 random cases of bench/pml_differential.py (1e-6; a
float32 near-tie, checked against float64 distances, is the only accepted difference).
Skipped in CI's venv, which has no PML."""

import pathlib
import sys

import numpy as np
import pytest

pml_ac = pytest.importorskip("pytorch_metric_learning.utils.accuracy_calculator")
torch = pytest.importorskip("torch")
pytest.importorskip("faiss")

import margin  # noqa: E402

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1] / "bench"))
import pml_differential as diff  # noqa: E402

from test_accuracy_calculator import KNN, X, Y  # noqa: E402


def pml(**kw):
    return pml_ac.AccuracyCalculator(device=torch.device("cpu"), **kw)


@pytest.mark.parametrize("k", [None, "max_bin_count", 1, 3])
@pytest.mark.parametrize("avg", [{}, {"avg_of_avgs": True}, {"return_per_class": True}])
def test_hand_made_sets_equal_pml(k, avg):
    for call in (
        dict(query=X, query_labels=Y),
        dict(query=X[:3], query_labels=Y[:3], reference=X, reference_labels=Y, ref_includes_query=True),
        dict(query=X[:2], query_labels=np.array([0, 7]), reference=X[2:], reference_labels=Y[2:]),
    ):
        want = pml(include=KNN, k=k, **avg).get_accuracy(**call)
        got = margin.AccuracyCalculator(include=KNN, k=k, **avg).get_accuracy(**call)
        for m in KNN:
            assert diff.same(got[m], want[m], 1e-6), (m, got[m], want[m], call.keys())


@pytest.mark.parametrize("seed", range(30))
def test_random_cases_equal_pml(seed):
    kw, call, info = diff.case(seed)
    nref = len(call.get("reference", call["query"]))
    if isinstance(kw["k"], int) and kw["k"] > nref - 1:
        pytest.skip("k beyond the reference (PML pads with -1, margin raises)")
    want = pml(**kw).get_accuracy(**call)
    got = margin.AccuracyCalculator(**kw).get_accuracy(**call)
    differing = [m for m in KNN if not diff.same(got[m], want[m], 1e-6)]
    if differing:
        k_used = nref - 1 if kw["k"] is None else (kw["k"] if isinstance(kw["k"], int) else 60)
        assert diff.near_tie_only(call, min(k_used, nref - 1)), (differing, info)
