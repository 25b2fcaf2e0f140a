"""Golden values of the losses with per-class parameters from pytorch-metric-learning (float64):
ArcFaceLoss, CosFaceLoss, NormalizedSoftmaxLoss, ProxyAnchorLoss, ProxyNCALoss, SoftTripleLoss.

Run from the repository root with the peers venv (see ../shared/peers/setup.sh):
    /work/.cache/peers-venv/bin/python crates/margin/tests/data/make_param_losses_golden.py
Writes param_losses_golden.json beside this script: each case's loss kind, its options (in
margin's names), embeddings, labels, parameters, PML's loss and its gradients with respect to
the embeddings and to the parameters.

Parameters are written in margin's layout, one row per class (or per centre, class-major):
PML's W / fc are [d, M] and are transposed here; its proxies are already [C, d].
"""
import json
import os

import numpy as np
import pytorch_metric_learning
import torch
from pytorch_metric_learning import losses

# kind → (PML class, the parameter's attribute, whether PML stores it transposed)
KINDS = {
    "arcface": (losses.ArcFaceLoss, "W", True),
    "cosface": (losses.CosFaceLoss, "W", True),
    "normalized_softmax": (losses.NormalizedSoftmaxLoss, "W", True),
    "proxy_anchor": (losses.ProxyAnchorLoss, "proxies", False),
    "proxy_nca": (losses.ProxyNCALoss, "proxies", False),
    "soft_triple": (losses.SoftTripleLoss, "fc", True),
}
# margin's option names → PML's keyword arguments
PML_NAME = {"margin_degrees": "margin"}


def case(name, kind, emb, labels, num_classes, params, **options):
    cls, attr, transposed = KINDS[kind]
    kwargs = {PML_NAME.get(k, k): v for k, v in options.items()}
    loss_fn = cls(num_classes=num_classes, embedding_size=emb.shape[1], **kwargs).double()
    w = getattr(loss_fn, attr)
    with torch.no_grad():
        w.copy_(torch.tensor(params.T if transposed else params, dtype=torch.float64))
    x = torch.tensor(emb, dtype=torch.float64, requires_grad=True)
    loss = loss_fn(x, torch.tensor(labels))
    loss.backward()
    gw = w.grad.numpy()
    return {
        "name": name,
        "kind": kind,
        "num_classes": num_classes,
        "options": options,
        "embeddings": emb.tolist(),
        "labels": labels,
        "params": params.tolist(),
        "loss": loss.item(),
        "grad": x.grad.numpy().tolist(),
        "param_grad": (gw.T if transposed else gw).tolist(),
    }


rng = np.random.default_rng(20261216)
cases = []
b, d, c = 10, 6, 4
x = rng.normal(size=(b, d))
y = [0, 1, 2, 3, 0, 1, 2, 3, 0, 1]
w = rng.normal(size=(c, d))

cases.append(case("arcface-default", "arcface", x, y, c, w))
# Row 0 is −w_0: θ ≈ π > π − m, PML's linear branch c − m·sin m.
x_far = x.copy()
x_far[0] = -w[0] + 1e-3 * rng.normal(size=d)
cases.append(case("arcface-far-branch", "arcface", x_far, y, c, w, margin_degrees=40.0, scale=16.0))
cases.append(case("cosface-default", "cosface", x, y, c, w))
cases.append(case("cosface-m0.2-s10", "cosface", x, y, c, w, margin=0.2, scale=10.0))
cases.append(case("normalized-softmax-default", "normalized_softmax", x, y, c, w))
cases.append(case("normalized-softmax-t0.5", "normalized_softmax", x, y, c, w, temperature=0.5))

# Six proxies, classes 4 and 5 absent from the batch (|C+| = 4 < C = 6).
p6 = rng.normal(size=(6, d))
cases.append(case("proxy-anchor-default", "proxy_anchor", x, y, 6, p6))
cases.append(case("proxy-anchor-m0.2-a16", "proxy_anchor", x, y, c, w, margin=0.2, alpha=16.0))
cases.append(case("proxy-nca-default", "proxy_nca", x, y, 6, p6))
cases.append(case("proxy-nca-s8", "proxy_nca", x, y, c, w, softmax_scale=8.0))

centres = rng.normal(size=(3 * 10, d))
y3 = [0, 1, 2, 0, 1, 2, 0, 1, 2, 0]
cases.append(case("soft-triple-default", "soft_triple", x, y3, 3, centres))
centres2 = rng.normal(size=(c * 2, d))
cases.append(case("soft-triple-k2", "soft_triple", x, y, c, centres2, centers_per_class=2, la=10.0, gamma=0.2, margin=0.05))

out = {"pml_version": pytorch_metric_learning.__version__, "torch_version": torch.__version__, "cases": cases}
with open(os.path.join(os.path.dirname(__file__), "param_losses_golden.json"), "w") as f:
    json.dump(out, f, indent=1)
print("wrote", len(cases), "cases")
