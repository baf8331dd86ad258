#!/usr/bin/env python3
"""NumPy reference forward of BertForSequenceClassification from a SecureRouter HDF5 checkpoint.

    python3 scripts/interop/numpy_bert.py FILE --ids '[[101, 7592, 102]]'
    python3 scripts/interop/numpy_bert.py FILE --ids-json ids.json        # {"ids": [[int, ...], ...]}
    python3 scripts/interop/numpy_bert.py BUNDLE --group models/NAME --ids '[[101, 102]]'

Prints {"logits": [[float, ...], ...]} (one row per sequence); with --embed instead
{"embeddings": [[float, ...], ...]}: the unit-length mean of the last hidden states (the
sentence-transformers pooling of all-MiniLM-L6-v2), a sanity check for imported encoders. Sequences are run one at a
time, so they need no padding; token types are all 0; an optional "mask" list (same shape
as "ids", 1 = keep, 0 = padding) in the ids JSON is applied as an additive attention mask.

Shapes (llm.c legend): S sequence, H hidden, A heads, D = H / A, I intermediate, L labels.
Computation in float64 (weights are float32), the exact HF BERT ("gelu" = erf GeLU, post-LN):
    x = LN(word[ids] + pos[0:S] + type[0])                      [S, H]
    per layer: a = softmax(q k^T / sqrt(D) + mask) v  per head  [S, H]
               x = LN(x + a Wo^T + bo); x = LN(x + gelu(x Wi^T + bi) Wout^T + bout)
    pooled = tanh(x[0] Wp^T + bp); logits = pooled Wc^T + bc    [L]
"""
import argparse
import json
import sys

import h5py
import numpy as np
from scipy.special import erf


def layer_norm(x, weight, bias, eps):
    mean = x.mean(axis=-1, keepdims=True)
    var = ((x - mean) ** 2).mean(axis=-1, keepdims=True)
    return (x - mean) / np.sqrt(var + eps) * weight + bias


def gelu(x):
    return 0.5 * x * (1.0 + erf(x / np.sqrt(2.0)))


def softmax(x):
    x = x - x.max(axis=-1, keepdims=True)
    e = np.exp(x)
    return e / e.sum(axis=-1, keepdims=True)


class NumpyBert:
    def __init__(self, weights, arch):
        self.w = {k: np.asarray(v, dtype=np.float64) for k, v in weights.items()}
        self.arch = arch

    def linear(self, x, name):
        return x @ self.w[name + ".weight"].T + self.w[name + ".bias"]

    def ln(self, x, name):
        return layer_norm(x, self.w[name + ".weight"], self.w[name + ".bias"], self.arch["layer_norm_eps"])

    def forward(self, ids, mask=None):
        """Logits [L] for one sequence of token ids (length S <= max_position)."""
        x = self.encode(ids, mask)
        pooled = np.tanh(self.linear(x[0], "bert.pooler.dense"))               # [H]
        return self.linear(pooled, "classifier")                               # [L]

    def encode(self, ids, mask=None):
        """Last hidden states [S, H] for one sequence of token ids."""
        w, a = self.w, self.arch
        ids = np.asarray(ids, dtype=np.int64)
        s = len(ids)
        if s == 0 or s > a["max_position"] or ids.min() < 0 or ids.max() >= a["vocab_size"]:
            raise ValueError(f"bad ids: length {s}, range must be 0..{a['vocab_size'] - 1}")
        additive = np.zeros(s) if mask is None else (1.0 - np.asarray(mask, dtype=np.float64)) * -1e9
        x = (w["bert.embeddings.word_embeddings.weight"][ids]
             + w["bert.embeddings.position_embeddings.weight"][:s]
             + w["bert.embeddings.token_type_embeddings.weight"][0])
        x = self.ln(x, "bert.embeddings.LayerNorm")
        d = a["hidden"] // a["heads"]
        for layer in range(a["layers"]):
            heads = a.get("layer_heads", [a["heads"]] * a["layers"])[layer]  # pruned models list per-layer heads
            p = f"bert.encoder.layer.{layer}."
            q, k, v = (self.linear(x, p + f"attention.self.{n}").reshape(s, heads, d).transpose(1, 0, 2)
                       for n in ("query", "key", "value"))                     # [A, S, D]
            scores = q @ k.transpose(0, 2, 1) / np.sqrt(d) + additive           # [A, S, S]
            ctx = (softmax(scores) @ v).transpose(1, 0, 2).reshape(s, heads * d)  # [S, H]
            x = self.ln(x + self.linear(ctx, p + "attention.output.dense"), p + "attention.output.LayerNorm")
            h = gelu(self.linear(x, p + "intermediate.dense"))                  # [S, I]
            x = self.ln(x + self.linear(h, p + "output.dense"), p + "output.LayerNorm")
        return x


def load(path, group=None):
    """(weights dict named like HF state_dict keys, architecture dict) from our HDF5 checkpoint."""
    with h5py.File(path, "r") as f:
        g = f[group] if group else f
        config = g.attrs["config"]
        config = json.loads(config.decode("utf-8") if isinstance(config, bytes) else config)
        weights = {name: ds[()] for name, ds in g["weights"].items()}
    return weights, config["architecture"]


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("file")
    parser.add_argument("--group", default=None, help="model group inside a bundle, e.g. models/tiny")
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--ids", help="JSON list of token-id lists, e.g. '[[101, 102]]'")
    source.add_argument("--ids-json", help='file with {"ids": [[...], ...], optional "mask": [[...], ...]}')
    parser.add_argument("--embed", action="store_true", help="print mean-pooled unit embeddings instead of logits")
    args = parser.parse_args()
    if args.ids is not None:
        batch, masks = json.loads(args.ids), None
    else:
        with open(args.ids_json) as fh:
            doc = json.load(fh)
        batch, masks = doc["ids"], doc.get("mask")
    weights, arch = load(args.file, args.group)
    model = NumpyBert(weights, arch)
    if args.embed:
        rows = []
        for i, ids in enumerate(batch):
            keep = np.ones(len(ids)) if masks is None else np.asarray(masks[i], dtype=np.float64)
            mean = (model.encode(ids, None if masks is None else masks[i]) * keep[:, None]).sum(0) / keep.sum()
            rows.append((mean / np.linalg.norm(mean)).tolist())
        print(json.dumps({"embeddings": rows}))
        return 0
    logits = [model.forward(ids, None if masks is None else masks[i]).tolist() for i, ids in enumerate(batch)]
    print(json.dumps({"logits": logits}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
