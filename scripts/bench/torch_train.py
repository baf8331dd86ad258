#!/usr/bin/env python3
"""PyTorch CPU reference for `securerouter bench train` (issue 2, acceptance 4).

Same work: L post-LN nn.TransformerEncoder layers (exact softmax, erf GeLU,
dropout 0.1) on random B x S x H hidden states, a Linear classifier on the
first token, cross-entropy, backward, gradient clipping and an AdamW step.
Usage: torch_train.py --layers 2 --hidden 128 --heads 2 --inter 512 --seq 64 --batch 32 [--threads 2]
"""
import argparse, json, time
import torch

p = argparse.ArgumentParser()
for k, d in [("layers", 2), ("hidden", 128), ("heads", 2), ("inter", 512), ("seq", 64), ("batch", 32), ("steps", 20), ("threads", 2)]:
    p.add_argument("--" + k, type=int, default=d)
a = p.parse_args()
torch.set_num_threads(a.threads)
torch.manual_seed(0)
layer = torch.nn.TransformerEncoderLayer(a.hidden, a.heads, a.inter, dropout=0.1, activation="gelu", batch_first=True, norm_first=False)
enc = torch.nn.TransformerEncoder(layer, a.layers, enable_nested_tensor=False)
head = torch.nn.Linear(a.hidden, 2)
params = list(enc.parameters()) + list(head.parameters())
opt = torch.optim.AdamW(params, lr=1e-4, weight_decay=0.01)
x = torch.randn(a.batch, a.seq, a.hidden)
y = torch.randint(0, 2, (a.batch,))
def step():
    opt.zero_grad()
    loss = torch.nn.functional.cross_entropy(head(enc(x)[:, 0]), y)
    loss.backward()
    torch.nn.utils.clip_grad_norm_(params, 1.0)
    opt.step()
    return loss.item()
for _ in range(3): step()
t = time.perf_counter()
for _ in range(a.steps): step()
dt = (time.perf_counter() - t) / a.steps
print(json.dumps({"torch": torch.__version__, "threads": a.threads, "seconds_per_step": dt, "steps_per_second": 1 / dt,
                  "tokens_per_second": a.batch * a.seq / dt}))
