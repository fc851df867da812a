"""convert(model): swap the paper's layers for normnorm_torch's, keeping their state."""

import torch
from torch import nn

from . import modules

# Class name -> (our class, the constructor arguments read from the layer's attributes).
_LAYERS = {
    "BatchNormalNorm1d": (modules.BatchNormalNorm1d, ("num_features", "order", "alpha", "iterations", "standardize",
                                                      "affine", "track_running_stats", "momentum", "noise_train",
                                                      "eps")),
    "BatchNormalNorm2d": (modules.BatchNormalNorm2d, ("num_features", "order", "alpha", "iterations", "standardize",
                                                      "affine", "track_running_stats", "momentum", "noise_train",
                                                      "eps")),
    "LayerNormalNorm": (modules.LayerNormalNorm, ("normalized_shape", "eps", "elementwise_affine", "noise_train")),
    "GroupNormalNorm": (modules.GroupNormalNorm, ("num_channels", "num_groups", "eps", "affine", "noise_train")),
    "InstanceNormalNorm2d": (modules.InstanceNormalNorm2d, ("num_features", "affine", "eps", "noise_train")),
}
_OURS = tuple(cls for cls, _ in _LAYERS.values())


def _replacement(layer: nn.Module):
    """Our layer for a paper layer (matched by class name and attributes), or None."""
    entry = _LAYERS.get(type(layer).__name__)
    if entry is None or isinstance(layer, _OURS):
        return None
    cls, names = entry
    if not all(hasattr(layer, name) for name in names):
        return None
    kwargs = {name: getattr(layer, name) for name in names}
    if "normalized_shape" in kwargs:
        kwargs["normalized_shape"] = tuple(kwargs["normalized_shape"])
    tensors = list(layer.parameters(recurse=False)) + list(layer.buffers(recurse=False))
    if tensors:
        kwargs["device"] = tensors[0].device
        kwargs["dtype"] = tensors[0].dtype
    ours = cls(**kwargs)
    ours.load_state_dict(layer.state_dict())
    count = getattr(layer, "num_batches_tracked", None)
    if isinstance(ours, modules._BatchNormalNorm) and count is not None:
        ours.num_batches_tracked.fill_(int(count))
    for name, theirs in layer.named_parameters(recurse=False):  # frozen stays frozen
        getattr(ours, name).requires_grad_(theirs.requires_grad)
    ours.train(layer.training)
    return ours


def convert(model: nn.Module) -> nn.Module:
    """Replaces every paper layer in `model` (in place) by normnorm_torch's and returns the model.

    A paper layer is a module whose class is named BatchNormalNorm1d, BatchNormalNorm2d,
    LayerNormalNorm, GroupNormalNorm or InstanceNormalNorm2d and that has that layer's
    attributes; weight, bias, running statistics, num_batches_tracked, training mode, dtype
    and device carry over. A model that is itself such a layer is returned converted.
    """
    top = _replacement(model)
    if top is not None:
        return top
    for name, child in list(model.named_children()):
        ours = _replacement(child)
        if ours is not None:
            setattr(model, name, ours)
        else:
            convert(child)
    return model
