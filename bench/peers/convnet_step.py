"""PyTorch side of `cargo run --release --example convnet_step`: the same ConvNet-4
(4 x [Conv3x3 64, BatchNorm, ReLU, MaxPool2], Linear -> 64), 28x28x1 input, batch 128,
forward + backward + Adam on an MSE loss against random targets.

Run with the peers venv (../shared/peers/setup.sh):
    $HOME/.cache/peers-venv/bin/python bench/peers/convnet_step.py [batch] [steps]
Prints one JSON line in the same format as the Rust example.
"""
import json
import sys
import time

import torch
from torch import nn

torch.set_num_threads(2)
batch = int(sys.argv[1]) if len(sys.argv) > 1 else 128
steps = int(sys.argv[2]) if len(sys.argv) > 2 else 20
torch.manual_seed(7)


def block(cin):
    return nn.Sequential(nn.Conv2d(cin, 64, 3, padding=1), nn.BatchNorm2d(64), nn.ReLU(), nn.MaxPool2d(2))


model = nn.Sequential(block(1), block(64), block(64), block(64), nn.Flatten(), nn.Linear(64, 64))
opt = torch.optim.Adam(model.parameters(), lr=1e-3)
x = torch.rand(batch, 1, 28, 28)
target = torch.randn(batch, 64)
fwd, bwd, optim, total = [], [], [], []
for step in range(steps + 3):
    t0 = time.perf_counter()
    loss = ((model(x) - target) ** 2).mean()
    t1 = time.perf_counter()
    opt.zero_grad()
    loss.backward()
    t2 = time.perf_counter()
    opt.step()
    t3 = time.perf_counter()
    if step >= 3:
        fwd.append(t1 - t0); bwd.append(t2 - t1); optim.append(t3 - t2); total.append(t3 - t0)
med = lambda v: sorted(v)[len(v) // 2]
print(json.dumps({
    "bench": "convnet4_step_pytorch", "torch": torch.__version__, "batch": batch, "steps": steps, "threads": 2,
    "images_per_s_median": round(batch / med(total), 1), "images_per_s_best": round(batch / min(total), 1),
    "ms_forward": round(1e3 * med(fwd), 1), "ms_backward": round(1e3 * med(bwd), 1), "ms_optimizer": round(1e3 * med(optim), 1),
}))
