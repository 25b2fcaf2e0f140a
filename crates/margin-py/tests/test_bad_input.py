"""Every bad input raises ValueError/TypeError with margin's message (input, row, shape)."""

import numpy as np
import pytest

import margin
import margin.losses as L
from margin import AccuracyCalculator

E = np.random.default_rng(0).normal(size=(12, 4)).astype(np.float32)
Y = np.repeat(np.arange(3), 4)


def with_nan(row=5, col=2):
    e = E.copy()
    e[row, col] = np.nan
    return e


CASES = [
    # (name, call, exception, words in the message)
    ("evaluate NaN", lambda: margin.evaluate(with_nan(), Y), ValueError, ["embeddings", "row 5", "column 2"]),
    ("evaluate inf", lambda: margin.evaluate(with_nan(3, 0) * 0 + np.inf, Y), ValueError, ["embeddings", "row 0"]),
    ("evaluate overflow", lambda: margin.evaluate(np.full((12, 4), 1e200), Y), ValueError, ["embeddings", "row 0", "overflow"]),
    ("evaluate 1-D", lambda: margin.evaluate(E[0], Y), ValueError, ["embeddings", "2-D", "(4,)"]),
    ("evaluate 3-D", lambda: margin.evaluate(E[None], Y), ValueError, ["embeddings", "2-D"]),
    ("evaluate label count", lambda: margin.evaluate(E, Y[:-1]), ValueError, ["labels", "11", "12"]),
    ("evaluate string dtype", lambda: margin.evaluate(np.array([["a"]]), Y), TypeError, ["embeddings", "dtype"]),
    ("evaluate complex", lambda: margin.evaluate(E.astype(np.complex64), Y), TypeError, ["embeddings", "dtype"]),
    ("evaluate bool", lambda: margin.evaluate(E > 0, Y), TypeError, ["embeddings", "dtype"]),
    ("evaluate fractional labels", lambda: margin.evaluate(E, Y + 0.5), ValueError, ["labels", "row 0", "whole"]),
    ("evaluate string labels", lambda: margin.evaluate(E, np.array(["a"] * 12)), TypeError, ["labels", "integer"]),
    ("evaluate 2-D labels", lambda: margin.evaluate(E, np.zeros((12, 2))), ValueError, ["labels", "1-D"]),
    ("evaluate distance", lambda: margin.evaluate(E, Y, distance="manhattan"), ValueError, ["distance", "manhattan"]),
    ("evaluate dim mismatch", lambda: margin.evaluate(E, Y, reference=E[:, :3], reference_labels=Y), ValueError, ["dimension", "reference"]),
    ("evaluate reference alone", lambda: margin.evaluate(E, Y, reference=E), ValueError, ["reference_labels"]),
    ("evaluate k too large", lambda: margin.evaluate(E, Y, k=50), ValueError, ["k = 50"]),
    ("evaluate k zero", lambda: margin.evaluate(E, Y, k=0), ValueError, ["k"]),
    ("evaluate empty", lambda: margin.evaluate(np.zeros((0, 4), np.float32), np.zeros(0, np.int64)), ValueError, ["embeddings"]),
    ("evaluate impossible episodes", lambda: margin.evaluate(E, Y, episodes=(5, 1, 10)), ValueError, ["few-shot"]),
    ("evaluate huge labels", lambda: margin.evaluate(E, np.array([2**63] + [1] * 11, dtype=np.uint64)), ValueError, ["labels", "row 0", "int64"]),
    ("evaluate negative k", lambda: margin.evaluate(E, Y, k=-2), ValueError, ["k", "-2"]),
    ("evaluate negative seed", lambda: margin.evaluate(E, Y, seed=-1), ValueError, ["seed"]),
    ("evaluate float k", lambda: margin.evaluate(E, Y, k=2.5), TypeError, ["k"]),
    ("knn negative k", lambda: margin.knn(E, E, -1), ValueError, ["k"]),
    ("index negative dim", lambda: margin.Index(-4), ValueError, ["dimension"]),
    ("index zero dim", lambda: margin.Index(0), ValueError, ["dimension"]),
    ("evaluate None", lambda: margin.evaluate(None, Y), TypeError, ["embeddings"]),
    ("knn k too large", lambda: margin.knn(E, E, 13), ValueError, ["k = 13", "12"]),
    ("knn k zero", lambda: margin.knn(E, E, 0), ValueError, ["k"]),
    ("knn NaN reference", lambda: margin.knn(E, with_nan(7, 1), 2), ValueError, ["references", "row 7", "column 1"]),
    ("knn dim mismatch", lambda: margin.knn(E, E[:, :2], 1), ValueError, ["dimension", "queries", "references"]),
    ("index dim mismatch", lambda: margin.Index(3).add(E), ValueError, ["vectors", "3", "4"]),
    ("index NaN", lambda: margin.Index(4).add(with_nan(2, 3)), ValueError, ["vectors", "row 2"]),
    ("index duplicate id", lambda: margin.Index(4).add(E[:2], ids=["a", "a"]), ValueError, ["ids", "a"]),
    ("index id count", lambda: margin.Index(4).add(E[:2], ids=["a"]), ValueError, ["ids"]),
    ("index kind", lambda: margin.Index(4, kind="ivf"), ValueError, ["kind", "ivf"]),
    ("index metric", lambda: margin.Index(4, metric="hamming"), ValueError, ["metric", "hamming"]),
    ("index precision", lambda: margin.Index(4, precision="f8"), ValueError, ["precision", "f8"]),
    ("index k", lambda: margin.Index.build(E).search(E, 0), ValueError, ["k"]),
    ("index k negative", lambda: margin.Index.build(E).search(E, -3), ValueError, ["k"]),
    ("index load missing", lambda: margin.Index.load("/nonexistent/x.index"), OSError, ["/nonexistent/x.index"]),
    ("index bytes corrupt", lambda: margin.Index.from_bytes(b"not an index"), ValueError, [""]),
    ("accuracy NaN", lambda: AccuracyCalculator(include=("precision_at_1",)).get_accuracy(with_nan(), Y), ValueError, ["row 5", "column 2"]),
    ("accuracy lengths", lambda: AccuracyCalculator().get_accuracy(E, Y[:3]), ValueError, ["same length"]),
    ("accuracy k too large", lambda: AccuracyCalculator(include=("precision_at_1",), k=20).get_accuracy(E, Y), ValueError, ["k = 20"]),
    ("accuracy dim", lambda: AccuracyCalculator(include=("precision_at_1",)).get_accuracy(E, Y, E[:, :2], Y), ValueError, ["dimension"]),
    ("loss NaN", lambda: L.TripletMarginLoss()(with_nan(), Y), ValueError, ["row 5"]),
    ("loss label count", lambda: L.TripletMarginLoss()(E, Y[:4]), ValueError, ["labels", "12"]),
    ("loss margin", lambda: L.TripletMarginLoss(margin=float("nan"))(E, Y), ValueError, ["margin"]),
    ("loss reducer", lambda: L.ContrastiveLoss(reducer="median")(E, Y), ValueError, ["reducer", "median"]),
    ("loss cosine unnormalised", lambda: L.TripletMarginLoss(distance="cosine", normalize=False)(E, Y), ValueError, ["cosine"]),
    ("loss miner type", lambda: L.TripletMarginLoss(miner="batch-hard"), TypeError, ["miner"]),
    ("param loss params shape", lambda: L.ProxyNCALoss(3, 4, params=np.zeros((3, 5))), ValueError, ["params", "(3, 5)", "(3, 4)"]),
    ("param loss soft triple rows", lambda: L.SoftTripleLoss(3, 4, centers_per_class=2, params=np.ones((3, 4))), ValueError, ["centers", "(6, 4)", "2 per class"]),
    ("param loss params NaN", lambda: L.ProxyAnchorLoss(3, 4, params=with_nan(2, 1)[:3])(E, Y), ValueError, ["proxies", "row 2"]),
    ("param loss label beyond classes", lambda: L.ArcFaceLoss(2, 4)(E, Y), ValueError, ["labels[8] = 2", "2 classes"]),
    ("param loss margin 180", lambda: L.ArcFaceLoss(3, 4, margin=180), ValueError, ["margin_degrees", "180"]),
    ("param loss scale", lambda: L.CosFaceLoss(3, 4, scale=0), ValueError, ["scale"]),
    ("param loss classes zero", lambda: L.ProxyNCALoss(0, 4), ValueError, ["num_classes"]),
    ("param loss seed", lambda: L.ProxyNCALoss(3, 4, seed=-1), ValueError, ["seed"]),
    ("param loss dim", lambda: L.ProxyNCALoss(3, 5)(E, Y), ValueError, ["embeddings", "proxies"]),
    ("param loss NaN embeddings", lambda: L.NormalizedSoftmaxLoss(3, 4)(with_nan(), Y), ValueError, ["row 5"]),
    ("loss miner field", lambda: L.TripletMarginLoss(miner=margin.miners.BatchHardMiner(bogus=1))(E, Y), ValueError, ["bogus"]),
]


@pytest.mark.parametrize("name,call,exc,words", CASES, ids=[c[0] for c in CASES])
def test_bad_input_raises(name, call, exc, words):
    with pytest.raises(exc) as info:
        call()
    msg = str(info.value)
    for w in words:
        assert w in msg, f"{name}: {w!r} not in {msg!r}"


def test_strided_and_other_dtypes_are_converted():
    base = np.asfortranarray(E.astype(np.float64))
    a = margin.evaluate(base, Y)["retrieval"]
    b = margin.evaluate(np.ascontiguousarray(base), Y)["retrieval"]
    assert a == b
    assert margin.evaluate(E.astype(np.float16), Y)["element_type"] == "f64"
    assert margin.evaluate((E * 10).astype(np.int32), Y)["element_type"] == "f64"
