"""Golden values of InfoNCE / NT-Xent from pytorch-metric-learning's NTXentLoss (float64).

Run from the repository root with the peers venv (see ../shared/peers/setup.sh):
    /work/.cache/peers-venv/bin/python crates/margin/tests/data/make_info_nce_golden.py
Writes info_nce_golden.json beside this script: each case's embeddings, labels,
temperature, PML's loss and its gradient with respect to the embeddings.
"""
import json
import os

import numpy as np
import pytorch_metric_learning
import torch
from pytorch_metric_learning.losses import NTXentLoss


def case(name, emb, labels, temperature, pairs):
    x = torch.tensor(emb, dtype=torch.float64, requires_grad=True)
    y = torch.tensor(labels)
    loss = NTXentLoss(temperature=temperature)(x, y)
    loss.backward()
    return {
        "name": name,
        "pairs": pairs,
        "temperature": temperature,
        "embeddings": emb.tolist(),
        "labels": labels,
        "loss": loss.item(),
        "grad": x.grad.numpy().tolist(),
    }


rng = np.random.default_rng(20261201)
cases = []
# In-batch pairs: rows [anchors; positives], anchor i and positive i share label i.
n, d = 6, 8
a = rng.normal(size=(n, d))
p = a + 0.5 * rng.normal(size=(n, d))
cases.append(case("pairs-t0.1", np.concatenate([a, p]), list(range(n)) * 2, 0.1, True))
cases.append(case("pairs-t0.05", np.concatenate([a, p]), list(range(n)) * 2, 0.05, True))
# A labelled batch: 12 rows of 4 classes (3 each), PML's default temperature.
x = rng.normal(size=(12, 5))
cases.append(case("labelled-t0.07", x, [0, 1, 2, 3] * 3, 0.07, False))
# A class with one member (no positive pair for it) and a large temperature.
cases.append(case("labelled-lone-t1", x[:7], [0, 0, 1, 1, 2, 2, 3], 1.0, False))
out = {"pml_version": pytorch_metric_learning.__version__, "torch_version": torch.__version__, "cases": cases}
with open(os.path.join(os.path.dirname(__file__), "info_nce_golden.json"), "w") as f:
    json.dump(out, f, indent=1)
print("wrote", len(cases), "cases")
