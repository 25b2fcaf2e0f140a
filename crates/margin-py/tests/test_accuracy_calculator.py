"""margin.AccuracyCalculator: PML's names and values on hand-computed cases.

The 1-D set below: x = 0, 1, 2.5 (class 0) and 3, 10, 11 (class 1); every query's two nearest
others are worked out by hand in the comments (k = max_bin_count - 1 = 2, R = 2).
"""

import math

import numpy as np
import pytest

from margin import AccuracyCalculator

X = np.array([[0.0], [1.0], [2.5], [3.0], [10.0], [11.0]], dtype=np.float32)
Y = np.array([0, 0, 0, 1, 1, 1])
# per query (p1, r_precision, map_at_r, mrr):
#  0: nn 1, 2.5 (both class 0)        -> 1, 1, 1, 1
#  1: nn 0, 2.5                        -> 1, 1, 1, 1
#  2.5: nn 3 (class 1), 1 (class 0)    -> 0, 1/2, (1/2)/2, 1/2
#  3: nn 2.5, 1 (both class 0)         -> 0, 0, 0, 0
#  10: nn 11, 3 (class 1)              -> 1, 1, 1, 1
#  11: nn 10, 3                        -> 1, 1, 1, 1
P1 = [1, 1, 0, 0, 1, 1]
RP = [1, 1, 0.5, 0, 1, 1]
MAPR = [1, 1, 0.25, 0, 1, 1]
MRR = [1, 1, 0.5, 0, 1, 1]

KNN = ("precision_at_1", "r_precision", "mean_average_precision_at_r", "mean_average_precision", "mean_reciprocal_rank")


def test_worked_example_self_reference():
    acc = AccuracyCalculator(include=KNN, k="max_bin_count").get_accuracy(X, Y)
    assert acc["precision_at_1"] == pytest.approx(np.mean(P1))
    assert acc["r_precision"] == pytest.approx(np.mean(RP))
    assert acc["mean_average_precision_at_r"] == pytest.approx(np.mean(MAPR))
    assert acc["mean_average_precision"] == pytest.approx(np.mean(MAPR))  # k = R here
    assert acc["mean_reciprocal_rank"] == pytest.approx(np.mean(MRR))
    assert list(acc) == ["mean_average_precision", "mean_average_precision_at_r", "mean_reciprocal_rank", "precision_at_1", "r_precision"]


def test_avg_of_avgs_and_per_class():
    acc = AccuracyCalculator(include=("r_precision",), k="max_bin_count", avg_of_avgs=True).get_accuracy(X, Y)
    assert acc["r_precision"] == pytest.approx((np.mean(RP[:3]) + np.mean(RP[3:])) / 2)
    per = AccuracyCalculator(include=("r_precision", "precision_at_1"), k="max_bin_count", return_per_class=True).get_accuracy(X, Y)
    assert per["r_precision"] == pytest.approx([np.mean(RP[:3]), np.mean(RP[3:])])
    assert per["precision_at_1"] == pytest.approx([2 / 3, 2 / 3])
    with pytest.raises(ValueError, match="mutually exclusive"):
        AccuracyCalculator(avg_of_avgs=True, return_per_class=True)


def test_k_smaller_than_r_divides_map_at_r_by_r():
    # k = 1 < R = 2: PML divides R-Precision by min(R, k) but MAP@R by R.
    acc = AccuracyCalculator(include=("r_precision", "mean_average_precision_at_r"), k=1).get_accuracy(X, Y)
    assert acc["r_precision"] == pytest.approx(np.mean(P1))
    assert acc["mean_average_precision_at_r"] == pytest.approx(np.mean(P1) / 2)


def test_k_none_uses_every_reference():
    # k = None: all 5 others; q "3" finds its first class-1 neighbour (10) at rank 4.
    acc = AccuracyCalculator(include=("mean_reciprocal_rank", "mean_average_precision"), k=None).get_accuracy(X, Y)
    mrr = [1, 1, 0.5, 0.25, 1, 1]
    assert acc["mean_reciprocal_rank"] == pytest.approx(np.mean(mrr))
    # MAP over all 5 columns: q "3" ranks 2.5, 1, 0, 10, 11 -> hits at 4 and 5: (1/4 + 2/5) / 2
    # q "2.5" ranks 3, 1, 0, 10, 11 -> hits at 2, 3: (1/2 + 2/3) / 2
    mapk = [1, 1, (1 / 2 + 2 / 3) / 2, (1 / 4 + 2 / 5) / 2, 1, 1]
    assert acc["mean_average_precision"] == pytest.approx(np.mean(mapk))


def test_ref_includes_query():
    q, ql = X[:3], Y[:3]
    acc = AccuracyCalculator(include=KNN, k="max_bin_count").get_accuracy(q, ql, X, Y, ref_includes_query=True)
    assert acc["precision_at_1"] == pytest.approx(np.mean(P1[:3]))
    assert acc["r_precision"] == pytest.approx(np.mean(RP[:3]))
    assert acc["mean_average_precision_at_r"] == pytest.approx(np.mean(MAPR[:3]))
    with pytest.raises(ValueError, match="first len\\(query\\) elements"):
        AccuracyCalculator(include=KNN).get_accuracy(X[3:], Y[3:], X, Y, ref_includes_query=True)


def test_lone_queries_excluded():
    q = np.array([[0.0], [10.0]], dtype=np.float32)
    ql = np.array([0, 2])  # label 2 is not in the reference: a lone query
    r = np.array([[1.0], [2.0], [11.0]], dtype=np.float32)
    rl = np.array([0, 1, 1])
    acc = AccuracyCalculator(include=KNN, k="max_bin_count").get_accuracy(q, ql, r, rl)
    assert acc["precision_at_1"] == 1.0
    acc = AccuracyCalculator(include=KNN, k=None).get_accuracy(q, ql, r, rl)
    assert acc["mean_average_precision"] == 1.0 and acc["mean_reciprocal_rank"] == 1.0


def test_all_lone_gives_nan():
    q = np.array([[0.0], [1.0]], dtype=np.float32)
    r = np.array([[2.0], [3.0]], dtype=np.float32)
    acc = AccuracyCalculator(include=("precision_at_1",), k=1).get_accuracy(q, np.array([5, 6]), r, np.array([0, 1]))
    assert math.isnan(acc["precision_at_1"])
    per = AccuracyCalculator(include=("precision_at_1",), k=1, return_per_class=True).get_accuracy(q, np.array([5, 6]), r, np.array([0, 1]))
    assert len(per["precision_at_1"]) == 2 and all(math.isnan(v) for v in per["precision_at_1"])


def test_default_metrics_and_clustering():
    x = np.repeat(np.eye(4, dtype=np.float32) * 10, 5, axis=0)
    y = np.repeat(np.arange(4), 5)
    acc = AccuracyCalculator().get_accuracy(x, y)
    assert list(acc) == ["AMI", "NMI", "mean_average_precision", "mean_average_precision_at_r", "mean_reciprocal_rank", "precision_at_1", "r_precision"]
    assert acc["NMI"] == pytest.approx(1.0) and acc["AMI"] == pytest.approx(1.0)
    assert acc["precision_at_1"] == 1.0
    acc = AccuracyCalculator(exclude=("NMI", "AMI")).get_accuracy(x, y, include=("precision_at_1",))
    assert list(acc) == ["precision_at_1"]


def test_constructor_checks():
    for bad in (0, -1, "max", 1.5):
        with pytest.raises(ValueError, match="k must be"):
            AccuracyCalculator(k=bad)
    with pytest.raises(ValueError, match="Primary metrics"):
        AccuracyCalculator(include=("precision_at_2",))
    with pytest.raises(TypeError):
        AccuracyCalculator(include="precision_at_1")
    with pytest.raises(NotImplementedError):
        AccuracyCalculator(knn_func=object())


def test_float_labels_like_pml_tensors():
    acc = AccuracyCalculator(include=("precision_at_1",)).get_accuracy(X, Y.astype(np.float32))
    assert acc["precision_at_1"] == pytest.approx(np.mean(P1))
