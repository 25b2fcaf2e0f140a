"""The GIL is released while margin computes; results are handed over without a copy."""


import numpy as np

import margin
from gil_check import assert_releases_gil


def test_gil_released_during_knn():
    rng = np.random.default_rng(0)
    q = rng.normal(size=(1500, 64)).astype(np.float32)
    r = rng.normal(size=(30000, 64)).astype(np.float32)
    assert_releases_gil(lambda size: margin.knn(np.tile(q, (size, 1)), r, 10))


def test_results_are_rust_buffers_not_copies():
    x = np.random.default_rng(1).normal(size=(50, 4)).astype(np.float32)
    idx, dist = margin.knn(x, x, 3)
    # numpy arrays that own a Rust Vec have the binding's container as their base: no copy.
    for a in (idx, dist):
        assert a.base is not None and "SliceContainer" in type(a.base).__name__
    assert idx.flags.c_contiguous and dist.flags.c_contiguous


def test_torch_tensors_accepted_and_torch_never_imported():
    import subprocess
    import sys

    code = (
        "import sys, numpy as np, margin\n"
        "x = np.eye(4, dtype=np.float32); y = np.arange(4) % 2\n"
        "margin.AccuracyCalculator(include=('precision_at_1',)).get_accuracy(x, y)\n"
        "margin.evaluate(np.repeat(x, 2, 0), np.repeat(y, 2))\n"
        "assert 'torch' not in sys.modules, 'margin imported torch'\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_torch_cpu_tensors_when_available():
    torch = __import__("pytest").importorskip("torch")
    from margin import AccuracyCalculator

    x = torch.randn(30, 5, generator=torch.Generator().manual_seed(0))
    y = torch.arange(30) % 3
    a = AccuracyCalculator(include=("precision_at_1", "r_precision")).get_accuracy(x, y)
    b = AccuracyCalculator(include=("precision_at_1", "r_precision")).get_accuracy(x.numpy(), y.numpy())
    assert a == b
