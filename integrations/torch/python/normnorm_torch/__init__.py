"""normnorm's normality normalization layers for PyTorch.

Drop-in replacements for the paper's layers (Eftekhari & Papyan, ICML 2025): the same
constructor arguments, parameter and buffer names, so state_dicts load both ways, running
on normnorm's C++ kernels through torch.ops.normnorm.* (autograd included, scriptable).

    import normnorm_torch
    norm = normnorm_torch.BatchNormalNorm2d(64)
    model = normnorm_torch.convert(model)   # swaps the paper's layers, keeping their state
    model = normnorm_torch.convert_sync(model)  # batch layers reducing over torch.distributed ranks
"""

import os

import torch

LIBRARY_PATH = os.path.join(os.path.dirname(os.path.abspath(__file__)), "libnormnorm_torch.so")
torch.ops.load_library(LIBRARY_PATH)

from .modules import (  # noqa: E402  (the ops must be loaded before the modules script)
    BatchNormalNorm1d,
    BatchNormalNorm2d,
    GroupNormalNorm,
    InstanceNormalNorm2d,
    LayerNormalNorm,
)
from .convert import convert  # noqa: E402
from .sync import SyncBatchNormalNorm1d, SyncBatchNormalNorm2d, convert_sync  # noqa: E402

__all__ = ["BatchNormalNorm1d", "BatchNormalNorm2d", "LayerNormalNorm", "GroupNormalNorm",
           "InstanceNormalNorm2d", "SyncBatchNormalNorm1d", "SyncBatchNormalNorm2d", "convert", "convert_sync",
           "LIBRARY_PATH"]
