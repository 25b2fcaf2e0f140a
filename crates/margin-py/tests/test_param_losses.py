"""margin.losses' losses with class parameters (ArcFace, CosFace, normalised softmax,
Proxy-Anchor, Proxy-NCA, SoftTriple): PML 2.9's golden values (margin's own test data,
crates/margin/tests/data/param_losses_golden.json: value, gradient w.r.t. the embeddings and
w.r.t. the parameters), the CLI's values on the same inputs (`margin loss --params`), the
seeded parameters equal to `margin loss --seed` (a `margin train` run's draw), central
differences, and — where torch and pytorch-metric-learning are importable (the peers venv) —
PML itself on random cases."""

import json
import subprocess

import numpy as np
import pytest

import margin.losses as L
from conftest import REPO, clustered

GOLDEN = REPO / "crates" / "margin" / "tests" / "data" / "param_losses_golden.json"

CLASSES = {
    "arcface": L.ArcFaceLoss,
    "cosface": L.CosFaceLoss,
    "normalized_softmax": L.NormalizedSoftmaxLoss,
    "proxy_anchor": L.ProxyAnchorLoss,
    "proxy_nca": L.ProxyNCALoss,
    "soft_triple": L.SoftTripleLoss,
}
# margin's option names → the Python classes' (PML's) keyword arguments
PY_NAME = {"margin_degrees": "margin"}


def golden_cases():
    return json.loads(GOLDEN.read_text())["cases"]


def loss_of(case, **kw):
    options = {PY_NAME.get(k, k): v for k, v in case["options"].items()}
    x = np.array(case["embeddings"])
    return CLASSES[case["kind"]](case["num_classes"], x.shape[1], **options, **kw)


def test_pml_golden():
    cases = golden_cases()
    assert len(cases) == 12 and {c["kind"] for c in cases} == set(CLASSES)
    for case in cases:
        x = np.array(case["embeddings"], dtype=np.float64)
        y = np.array(case["labels"])
        w = np.array(case["params"], dtype=np.float64)
        loss = loss_of(case, params=w)
        value, grad, pgrad, stats = loss.value_and_grads(x, y)
        assert value == pytest.approx(case["loss"], rel=1e-10, abs=1e-12), case["name"]
        np.testing.assert_allclose(grad, np.array(case["grad"]), rtol=1e-8, atol=1e-10, err_msg=case["name"])
        np.testing.assert_allclose(pgrad, np.array(case["param_grad"]), rtol=1e-8, atol=1e-10, err_msg=case["name"])
        assert grad.dtype == np.float64 and grad.shape == x.shape and pgrad.shape == w.shape
        assert stats["num_tuples"] == len(y) * (case["num_classes"] - 1) or case["kind"] == "proxy_anchor"
        # The three-value call of the other losses.
        v2, g2, _ = loss(x, y)
        assert v2 == value
        np.testing.assert_array_equal(g2, grad)


@pytest.mark.parametrize("name", ["arcface-default", "proxy-anchor-default", "soft-triple-k2", "proxy-nca-s8"])
def test_equals_the_cli(cli, tmp_path, name):
    case = next(c for c in golden_cases() if c["name"] == name)
    x, y, w = np.array(case["embeddings"]), np.array(case["labels"]), np.array(case["params"])
    for f, a in (("E", x), ("L", y), ("W", w)):
        np.save(tmp_path / f"{f}.npy", a)
    flags = []
    for k, v in case["options"].items():
        flags += ["--margin" if k in ("margin", "margin_degrees") else "--" + k.replace("_", "-"), str(v)]
    out = subprocess.run(
        [cli, "loss", "--loss", case["kind"].replace("_", "-"), "--embeddings", str(tmp_path / "E.npy"), "--labels", str(tmp_path / "L.npy"),
         "--params", str(tmp_path / "W.npy"), "--dtype", "f64", "--json", "--grad-out", str(tmp_path / "G.npy"),
         "--param-grad-out", str(tmp_path / "GW.npy"), *flags],
        check=True, capture_output=True, text=True,
    ).stdout
    want = json.loads(out)
    value, grad, pgrad, stats = loss_of(case, params=w).value_and_grads(x, y)
    assert value == want["loss"]
    np.testing.assert_array_equal(grad, np.load(tmp_path / "G.npy"))
    np.testing.assert_array_equal(pgrad, np.load(tmp_path / "GW.npy"))
    for key in ("num_tuples", "num_active", "active_fraction", "mean_ap_dist", "mean_an_dist"):
        assert stats[key] == want[key], key


@pytest.mark.parametrize("kind,flags,kw", [
    ("proxy-anchor", [], {}),
    ("soft-triple", ["--centers-per-class", "3"], {"centers_per_class": 3}),
    ("arcface", ["--scale", "16"], {"scale": 16.0}),
])
def test_seeded_parameters_equal_the_clis(cli, tmp_path, kind, flags, kw):
    x, y = clustered(3, n_classes=4, per_class=5, dim=6, dtype=np.float64)
    np.save(tmp_path / "E.npy", x)
    np.save(tmp_path / "L.npy", y)
    out = subprocess.run(
        [cli, "loss", "--loss", kind, "--embeddings", str(tmp_path / "E.npy"), "--labels", str(tmp_path / "L.npy"), "--seed", "11",
         "--dtype", "f64", "--json", "--params-out", str(tmp_path / "P.npy"), *flags],
        check=True, capture_output=True, text=True,
    ).stdout
    loss = CLASSES[kind.replace("-", "_")](4, 6, seed=11, **kw)
    assert loss.params.dtype == np.float32
    np.testing.assert_array_equal(loss.params.astype(np.float64), np.load(tmp_path / "P.npy"))
    assert loss(x, y)[0] == json.loads(out)["loss"]
    other = CLASSES[kind.replace("-", "_")](4, 6, seed=12, **kw)
    assert not np.array_equal(other.params, loss.params)


def test_float32_follows_the_embeddings():
    x, y = clustered(4, n_classes=3, per_class=4, dim=5, dtype=np.float64)
    loss = L.ProxyAnchorLoss(3, 5, seed=1)
    v64, g64, p64, _ = loss.value_and_grads(x, y)
    v32, g32, p32, _ = loss.value_and_grads(x.astype(np.float32), y)
    assert g32.dtype == np.float32 and p32.dtype == np.float32
    assert v32 == pytest.approx(v64, rel=1e-5)
    np.testing.assert_allclose(p32, p64, rtol=1e-3, atol=1e-5)


@pytest.mark.parametrize("make", [
    lambda: L.ArcFaceLoss(3, 4, margin=20.0, scale=4.0, seed=2),
    lambda: L.CosFaceLoss(3, 4, margin=0.2, scale=3.0, seed=2),
    lambda: L.NormalizedSoftmaxLoss(3, 4, temperature=0.5, seed=2),
    lambda: L.ProxyAnchorLoss(3, 4, alpha=4.0, seed=2),
    lambda: L.ProxyNCALoss(3, 4, softmax_scale=2.0, seed=2),
    lambda: L.SoftTripleLoss(3, 4, centers_per_class=2, la=4.0, gamma=0.5, margin=0.1, seed=2),
])
def test_central_differences_of_both_gradients(make):
    x, y = clustered(5, n_classes=3, per_class=3, dim=4, dtype=np.float64, spread=1.0)
    loss = make()
    w = loss.params.astype(np.float64)
    _, g, gw, _ = loss.value_and_grads(x, y, params=w)
    h = 1e-6
    for arr, grad, call in ((x, g, lambda a: loss.value_and_grads(a, y, params=w)[0]), (w, gw, lambda a: loss.value_and_grads(x, y, params=a)[0])):
        for i, j in [(0, 0), (2, 3), (arr.shape[0] - 1, 1)]:
            ap, am = arr.copy(), arr.copy()
            ap[i, j] += h
            am[i, j] -= h
            num = (call(ap) - call(am)) / (2 * h)
            assert grad[i, j] == pytest.approx(num, rel=1e-4, abs=1e-7)


def test_sgd_on_the_parameters_lowers_the_loss():
    x, y = clustered(6, n_classes=4, per_class=6, dim=8, dtype=np.float64)
    loss = L.ProxyNCALoss(4, 8, seed=0)
    loss.params = loss.params.astype(np.float64)
    first = loss(x, y)[0]
    for _ in range(20):
        _, _, gw, _ = loss.value_and_grads(x, y)
        loss.params = loss.params - 0.5 * gw
    assert loss(x, y)[0] < first


# --- PML itself (peers venv only) ----------------------------------------------------------

PML = {
    "arcface": ("ArcFaceLoss", True),
    "cosface": ("CosFaceLoss", True),
    "normalized_softmax": ("NormalizedSoftmaxLoss", True),
    "proxy_anchor": ("ProxyAnchorLoss", False),
    "proxy_nca": ("ProxyNCALoss", False),
    "soft_triple": ("SoftTripleLoss", True),
}


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("kind", sorted(PML))
def test_random_cases_equal_pml_live(kind, seed):
    torch = pytest.importorskip("torch")
    losses = pytest.importorskip("pytorch_metric_learning.losses")
    rng = np.random.default_rng(1000 + seed)
    b, d, c = int(rng.integers(4, 16)), int(rng.integers(2, 9)), int(rng.integers(2, 7))
    x = rng.normal(size=(b, d))
    y = rng.integers(0, c, size=b)
    options = {
        "arcface": {"margin": float(rng.uniform(5, 40)), "scale": float(rng.uniform(2, 64))},
        "cosface": {"margin": float(rng.uniform(0, 0.5)), "scale": float(rng.uniform(2, 64))},
        "normalized_softmax": {"temperature": float(rng.uniform(0.05, 1))},
        "proxy_anchor": {"margin": float(rng.uniform(0, 0.3)), "alpha": float(rng.uniform(2, 32))},
        "proxy_nca": {"softmax_scale": float(rng.uniform(0.5, 10))},
        "soft_triple": {"centers_per_class": int(rng.integers(1, 4)), "la": float(rng.uniform(2, 20)), "gamma": float(rng.uniform(0.05, 0.5)), "margin": float(rng.uniform(0, 0.1))},
    }[kind]
    ours = CLASSES[kind](c, d, **options, seed=seed)
    w = ours.params.astype(np.float64)
    name, transposed = PML[kind]
    theirs = getattr(losses, name)(num_classes=c, embedding_size=d, **options).double()
    attr = {"ArcFaceLoss": "W", "CosFaceLoss": "W", "NormalizedSoftmaxLoss": "W", "SoftTripleLoss": "fc"}.get(name, "proxies")
    p = getattr(theirs, attr)
    with torch.no_grad():
        p.copy_(torch.tensor(w.T if transposed else w))
    xt = torch.tensor(x, requires_grad=True)
    want = theirs(xt, torch.tensor(y))
    want.backward()
    pg = p.grad.numpy()
    value, g, gw, _ = ours.value_and_grads(x, y, params=w)
    assert value == pytest.approx(want.item(), rel=1e-9, abs=1e-12)
    np.testing.assert_allclose(g, xt.grad.numpy(), rtol=1e-7, atol=1e-9)
    np.testing.assert_allclose(gw, pg.T if transposed else pg, rtol=1e-7, atol=1e-9)


def test_torch_autograd_recipe_trains_both():
    torch = pytest.importorskip("torch")

    class MarginParamLoss(torch.autograd.Function):
        @staticmethod
        def forward(ctx, embeddings, params, labels, loss):
            v, g, gp, _ = loss.value_and_grads(embeddings.detach().numpy(), labels.numpy(), params=params.detach().numpy())
            ctx.save_for_backward(torch.from_numpy(g), torch.from_numpy(gp))
            return embeddings.new_tensor(v)

        @staticmethod
        def backward(ctx, grad_out):
            g, gp = ctx.saved_tensors
            return grad_out * g, grad_out * gp, None, None

    x, y = clustered(7, n_classes=3, per_class=4, dim=5, dtype=np.float64)
    loss = L.CosFaceLoss(3, 5, scale=8.0, seed=3)
    emb = torch.tensor(x, requires_grad=True)
    w = torch.tensor(loss.params.astype(np.float64), requires_grad=True)
    value = MarginParamLoss.apply(emb, w, torch.tensor(y), loss)
    value.backward()
    want_v, want_g, want_gp, _ = loss.value_and_grads(x, y, params=w.detach().numpy())
    assert value.item() == want_v
    np.testing.assert_array_equal(emb.grad.numpy(), want_g)
    np.testing.assert_array_equal(w.grad.numpy(), want_gp)
