"""margin.losses: PML's golden values (../shared/golden/pml_golden.json), the Rust API's values
(through `margin loss --json --grad-out`), a central-difference check, and the torch recipe."""

import json
import subprocess

import numpy as np
import pytest

import margin
import margin.losses as L
import margin.miners as M
from conftest import clustered, shared_dir


def golden_cases():
    path = shared_dir() / "golden" / "pml_golden.json"
    if not path.exists():
        pytest.skip(f"{path} missing (../shared)")
    return json.loads(path.read_text())["cases"]


def distance_of(spec):
    if spec["class"] == "CosineSimilarity":
        return "cosine", True
    kw = spec["kwargs"]
    return ("euclidean" if kw.get("power", 1) == 1 else "squared-euclidean"), kw.get("normalize_embeddings", True)


MINERS = {
    "BatchHardMiner": M.BatchHardMiner,
    "TripletMarginMiner": M.TripletMarginMiner,
    "MultiSimilarityMiner": M.MultiSimilarityMiner,
}


def loss_of(case):
    distance, normalize = distance_of(case["distance"])
    miner = None
    if case["miner"]:
        m = case["miner"]
        md, mn = distance_of(m["distance"])
        miner = MINERS[m["class"]](distance=md, normalize=mn, **m["kwargs"])
    kw = dict(case["loss"]["kwargs"])
    cls = L.TripletMarginLoss if case["loss"]["class"] == "TripletMarginLoss" else L.ContrastiveLoss
    return cls(**kw, distance=distance, normalize=normalize, miner=miner)


def test_pml_golden():
    cases = golden_cases()
    for case in cases:
        loss = loss_of(case)
        x = np.array(case["embeddings"], dtype=np.float64)
        y = np.array(case["labels"])
        value, grad, stats = loss(x, y)
        assert value == pytest.approx(case["loss_value"], rel=1e-9, abs=1e-12), case["name"]
        np.testing.assert_allclose(grad, np.array(case["grad"]), rtol=1e-7, atol=1e-10, err_msg=case["name"])
        assert grad.dtype == np.float64 and grad.shape == x.shape
        assert stats["num_tuples"] >= 0
    assert len(cases) >= 10


def test_float32_gradient_dtype_and_value_close_to_float64():
    x, y = clustered(3, n_classes=4, per_class=6, dim=5, dtype=np.float64)
    loss = L.TripletMarginLoss(margin=0.2, miner=M.BatchHardMiner())
    v64, g64, _ = loss(x, y)
    v32, g32, _ = loss(x.astype(np.float32), y)
    assert g32.dtype == np.float32
    assert v32 == pytest.approx(v64, rel=1e-5)
    np.testing.assert_allclose(g32, g64, rtol=1e-3, atol=1e-5)


def test_central_difference():
    x, y = clustered(4, n_classes=3, per_class=4, dim=3, dtype=np.float64, spread=1.5)
    loss = L.ContrastiveLoss(pos_margin=0.1, neg_margin=0.9)
    _, g, _ = loss(x, y)
    h = 1e-6
    for i, j in [(0, 0), (3, 2), (7, 1), (11, 0)]:
        xp, xm = x.copy(), x.copy()
        xp[i, j] += h
        xm[i, j] -= h
        num = (loss(xp, y)[0] - loss(xm, y)[0]) / (2 * h)
        assert g[i, j] == pytest.approx(num, rel=1e-4, abs=1e-7)


@pytest.mark.parametrize("args,make", [
    (["--loss", "triplet", "--margin", "0.2", "--miner", "batch-hard"], lambda: L.TripletMarginLoss(margin=0.2, miner=M.BatchHardMiner())),
    (["--loss", "triplet", "--margin", "0.1"], lambda: L.TripletMarginLoss(margin=0.1)),
    (["--loss", "contrastive", "--miner", "multi-similarity", "--miner-distance", "cosine"], lambda: L.ContrastiveLoss(miner=M.MultiSimilarityMiner(distance="cosine"))),
    (["--loss", "contrastive", "--form", "squared", "--pooling", "pooled", "--reducer", "mean"], lambda: L.ContrastiveLoss(form="squared", pooling="pooled", reducer="mean")),
])
def test_equals_rust_api_through_cli(cli, tmp_path, args, make):
    x, y = clustered(5, n_classes=5, per_class=6, dim=7, dtype=np.float64)
    np.save(tmp_path / "E.npy", x)
    np.save(tmp_path / "L.npy", y)
    out = subprocess.run(
        [cli, "loss", "--embeddings", str(tmp_path / "E.npy"), "--labels", str(tmp_path / "L.npy"), "--dtype", "f64",
         "--grad-out", str(tmp_path / "G.npy"), "--json", *args],
        check=True, capture_output=True, text=True,
    ).stdout
    want = json.loads(out)
    value, grad, stats = make()(x, y)
    assert value == want["loss"]
    np.testing.assert_array_equal(grad, np.load(tmp_path / "G.npy"))
    for key in ("num_tuples", "num_active", "active_fraction", "mean_ap_dist", "mean_an_dist"):
        assert stats[key] == want[key], key


def test_torch_autograd_recipe():
    torch = pytest.importorskip("torch")

    class MarginLoss(torch.autograd.Function):
        @staticmethod
        def forward(ctx, embeddings, labels, loss):
            value, grad, _ = loss(embeddings.detach().cpu().numpy(), labels.cpu().numpy())
            ctx.save_for_backward(torch.from_numpy(grad).to(embeddings.device))
            return embeddings.new_tensor(value)

        @staticmethod
        def backward(ctx, g):
            (grad,) = ctx.saved_tensors
            return g * grad, None, None

    x, y = clustered(6, dtype=np.float64)
    emb = torch.tensor(x, requires_grad=True)
    loss = L.TripletMarginLoss(margin=0.2)
    value = MarginLoss.apply(emb, torch.tensor(y), loss)
    value.backward()
    want_v, want_g, _ = loss(x, y)
    assert value.item() == want_v
    np.testing.assert_array_equal(emb.grad.numpy(), want_g)
