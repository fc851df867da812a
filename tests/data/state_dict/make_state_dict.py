#!/usr/bin/env python3
"""Writes the small state dicts tests/io/test_state_dict.cpp reads (run from anywhere):

    /usr/bin/python3 tests/data/state_dict/make_state_dict.py

model.npz, model_compressed.npz, model.safetensors: a model with one module of each
form, with the parameter and buffer names and shapes of the paper's PyTorch code, and
values from the formulas in entry_value() (the C++ test computes the same ones, so it
knows what a correct load holds without reading the files a second way).
dtypes.safetensors: one vector in each floating dtype, with its float64 value next to it
(checks the reader's F16/BF16 decoding against PyTorch's).
"""
import os
import sys

import torch

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "..", "..", "tools"))
from export_state_dict import export_state_dict, write_safetensors  # noqa: E402

# prefix -> (form, affine shape, channels of the running statistics or 0)
MODULES = {
    "features.0": ("BatchNormalNorm2d", (3,), 3),
    "features.2": ("GroupNormalNorm", (4,), 0),
    "classifier.1": ("BatchNormalNorm1d", (5,), 5),
    "encoder.norm": ("LayerNormalNorm", (2, 3), 0),
    "style": ("InstanceNormalNorm2d", (3,), 0),
}
MODULE_INDEX = {prefix: k for k, prefix in enumerate(MODULES)}


def entry_value(name, module, i):
    """Value i (flat, C order) of entry `name` of module number `module`; exact in float32."""
    j = i + module
    return {
        "weight": 1 + 0.125 * (j % 5 - 2),
        "bias": 0.0625 * (j % 7 - 3),
        "running_mean": 0.25 * (j % 3 - 1),
        "running_var": 0.5 + 0.25 * (j % 4),
        "running_lmbda": 0.75 + 0.125 * (j % 5),
        "running_norm": 0.8125 + 0.0625 * (j % 3),
    }[name]


def filled(name, module, shape):
    n = 1
    for d in shape:
        n *= d
    values = [entry_value(name, module, i) for i in range(n)]
    return torch.tensor(values, dtype=torch.float32).reshape(shape)


class StateHolder(torch.nn.Module):
    """Holds one normalization module's state under the paper's code's names."""

    def __init__(self, module, affine_shape, channels):
        super().__init__()
        self.weight = torch.nn.Parameter(filled("weight", module, affine_shape))
        self.bias = torch.nn.Parameter(filled("bias", module, affine_shape))
        if channels:
            for name in ("running_mean", "running_var", "running_lmbda", "running_norm"):
                self.register_buffer(name, filled(name, module, (channels,)))
            self.register_buffer("num_batches_tracked", torch.tensor(7 + module, dtype=torch.long))


def model_state_dict():
    root = torch.nn.Module()
    for prefix, (_, affine_shape, channels) in MODULES.items():
        parent = root
        parts = prefix.split(".")
        for part in parts[:-1]:
            if not hasattr(parent, part):
                parent.add_module(part, torch.nn.Module())
            parent = getattr(parent, part)
        parent.add_module(parts[-1], StateHolder(MODULE_INDEX[prefix], affine_shape, channels))
    return root.state_dict()


def main():
    state = model_state_dict()
    export_state_dict(state, os.path.join(HERE, "model"), metadata={"format": "pt", "writer": "make_state_dict.py"})
    export_state_dict(state, os.path.join(HERE, "model_compressed"), compressed=True)
    os.remove(os.path.join(HERE, "model_compressed.safetensors"))

    base = torch.tensor([1.0, -2.5, 0.1, 3.14159, -1e-3, 65504.0, 1e-7, 300.0], dtype=torch.float64)
    dtypes = {}
    for label, dtype in (("f16", torch.float16), ("bf16", torch.bfloat16), ("f32", torch.float32),
                         ("f64", torch.float64)):
        stored = base.to(dtype)
        dtypes[label] = stored
        dtypes[label + "_as_f64"] = stored.to(torch.float64)
    dtypes["i64"] = torch.tensor([[-3, 0], [5, 1 << 40]], dtype=torch.long)
    write_safetensors(os.path.join(HERE, "dtypes.safetensors"), dtypes)


if __name__ == "__main__":
    main()
