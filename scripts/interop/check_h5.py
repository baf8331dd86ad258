#!/usr/bin/env python3
"""Print the structure of a SecureRouter HDF5 checkpoint (DESIGN section 4) and check that
its weights form a Hugging Face BertForSequenceClassification state_dict.

    python3 scripts/interop/check_h5.py FILE [--group models/NAME] [--json]

Without --json: a tree of groups, datasets (shape, dtype) and attributes, then the
state-dict check. With --json: one JSON object on stdout:
    {"config": {...}, "weights": {name: {"shape": [...], "dtype": "float32"}},
     "vocab_size": int, "vocab_head": [first 5 tokens], "do_lower_case": bool,
     "attributes": {name: value}, "state_dict_check": {"missing": [...], "unexpected": [...],
     "shape_mismatch": [...]}}
Exit status 0 when the state dict matches the architecture in `config`, 1 otherwise.

Loading into PyTorch (not required here) would be:
    model = transformers.BertForSequenceClassification(bert_config)
    model.load_state_dict({k: torch.from_numpy(v) for k, v in state_dict(f).items()})
"""
import argparse
import json
import sys

import h5py
import numpy as np


def state_dict(group):
    """All weights as a dict of numpy arrays named exactly like HF state_dict keys."""
    return {name: np.asarray(ds[()]) for name, ds in group["weights"].items()}


def expected_parameters(arch, include_classifier=True):
    """BertForSequenceClassification parameter names and shapes for DESIGN's architecture keys."""
    h, i = arch["hidden"], arch["intermediate"]
    out = [
        ("bert.embeddings.word_embeddings.weight", (arch["vocab_size"], h)),
        ("bert.embeddings.position_embeddings.weight", (arch["max_position"], h)),
        ("bert.embeddings.token_type_embeddings.weight", (arch["type_vocab_size"], h)),
        ("bert.embeddings.LayerNorm.weight", (h,)),
        ("bert.embeddings.LayerNorm.bias", (h,)),
    ]
    for layer in range(arch["layers"]):
        p = f"bert.encoder.layer.{layer}."
        for part in ("query", "key", "value"):
            out += [(p + f"attention.self.{part}.weight", (h, h)), (p + f"attention.self.{part}.bias", (h,))]
        out += [
            (p + "attention.output.dense.weight", (h, h)), (p + "attention.output.dense.bias", (h,)),
            (p + "attention.output.LayerNorm.weight", (h,)), (p + "attention.output.LayerNorm.bias", (h,)),
            (p + "intermediate.dense.weight", (i, h)), (p + "intermediate.dense.bias", (i,)),
            (p + "output.dense.weight", (h, i)), (p + "output.dense.bias", (h,)),
            (p + "output.LayerNorm.weight", (h,)), (p + "output.LayerNorm.bias", (h,)),
        ]
    out += [("bert.pooler.dense.weight", (h, h)), ("bert.pooler.dense.bias", (h,))]
    if include_classifier:
        out += [("classifier.weight", (arch["num_labels"], h)), ("classifier.bias", (arch["num_labels"],))]
    return out


def load_state_dict_check(weights, arch):
    """What `model.load_state_dict(weights, strict=True)` would complain about."""
    expected = dict(expected_parameters(arch))
    return {
        "missing": sorted(k for k in expected if k not in weights),
        "unexpected": sorted(k for k in weights if k not in expected),
        "shape_mismatch": sorted(
            f"{k}: expected {list(s)}, found {list(weights[k].shape)}"
            for k, s in expected.items() if k in weights and tuple(weights[k].shape) != tuple(s)),
    }


def attr_value(value):
    if isinstance(value, bytes):
        return value.decode("utf-8")
    if isinstance(value, np.generic):
        return value.item()
    return value


def tokenizer(f, group):
    """(vocab list, do_lower_case) from the model group, else from the file root (bundles)."""
    for owner in (group, f):
        if "tokenizer/vocab" in owner:
            ds = owner["tokenizer/vocab"]
            vocab = [s.decode("utf-8") if isinstance(s, bytes) else s for s in ds.asstr()[()]]
            flag = ds.attrs.get("do_lower_case", owner["tokenizer"].attrs.get("do_lower_case", 1))
            return vocab, bool(flag)
    return [], True


def print_tree(group, indent=""):
    for key, value in group.attrs.items():
        text = attr_value(value)
        if isinstance(text, str) and len(text) > 100:
            text = text[:100] + "..."
        print(f"{indent}@{key} = {text!r}")
    for name, item in group.items():
        if isinstance(item, h5py.Group):
            print(f"{indent}{name}/")
            print_tree(item, indent + "  ")
        else:
            print(f"{indent}{name}  shape={list(item.shape)} dtype={item.dtype}")
            for key, value in item.attrs.items():
                print(f"{indent}  @{key} = {attr_value(value)!r}")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("file")
    parser.add_argument("--group", default=None, help="model group inside a bundle, e.g. models/tiny")
    parser.add_argument("--json", action="store_true", help="print a JSON summary instead of the tree")
    args = parser.parse_args()
    with h5py.File(args.file, "r") as f:
        group = f[args.group] if args.group else f
        config = json.loads(attr_value(group.attrs["config"]))
        weights = state_dict(group)
        vocab, lower = tokenizer(f, group)
        arch = config.get("architecture")
        check = load_state_dict_check(weights, arch) if arch else None
        if args.json:
            print(json.dumps({
                "config": config,
                "weights": {k: {"shape": list(v.shape), "dtype": str(v.dtype)} for k, v in sorted(weights.items())},
                "vocab_size": len(vocab),
                "vocab_head": vocab[:5],
                "do_lower_case": lower,
                "attributes": {k: attr_value(v) for k, v in group.attrs.items() if k != "config"},
                "state_dict_check": check,
            }))
        else:
            print_tree(f)
            print(f"\n{len(weights)} weight tensors, {sum(v.size for v in weights.values())} parameters, "
                  f"vocab {len(vocab)} tokens, do_lower_case={lower}")
            if check is None:
                print("config has no 'architecture': state-dict check skipped")
            elif any(check.values()):
                print("load_state_dict(strict=True) would FAIL:", json.dumps(check, indent=1))
            else:
                print("load_state_dict(strict=True) would succeed: names and shapes match BertForSequenceClassification")
    return 0 if (check is None or not any(check.values())) else 1


if __name__ == "__main__":
    sys.exit(main())
