"""Batch forms whose statistics span the ranks of a torch.distributed process group.

    model = normnorm_torch.convert_sync(model)          # before wrapping it in DistributedDataParallel
    model = torch.nn.parallel.DistributedDataParallel(model)

SyncBatchNormalNorm1d/2d are BatchNormalNorm1d/2d (same arguments, parameters, buffers
and state_dict) whose training forward and backward reduce over the ranks: for the same
global batch split over the ranks, outputs, gradients and running statistics are those
of one process on the whole batch (docs/distributed.md, "PyTorch"). The reduction runs in
normnorm's C++ call through the process group's allgather (Gloo on CPU).

grad weight / grad bias are each rank's own sums over its samples: DistributedDataParallel
averages them over the ranks, as it does every parameter's gradient.
"""

from typing import Optional

import torch
import torch.distributed as dist
from torch import Tensor, nn

from .convert import _replacement as _ours_for_paper_layer
from . import modules

__all__ = ["SyncBatchNormalNorm1d", "SyncBatchNormalNorm2d", "convert_sync"]


def _script_process_group(group):
    """The group as the ScriptObject the sync ops take (normnorm_torch._process_group)."""
    try:
        from . import _process_group
    except ImportError as error:
        raise RuntimeError("normnorm: SyncBatchNormalNorm needs normnorm_torch._process_group, which this build "
                           "does not have (configure said why: Python headers, pybind11 or libtorch_python "
                           "missing)") from error
    return _process_group.script_object(group)


class _SyncBatchNormalNorm(modules._BatchNormalNorm):
    def __init__(self, *args, process_group=None, **kwargs):
        super().__init__(*args, **kwargs)
        self.process_group = process_group

    def forward(self, input: Tensor) -> Tensor:
        # Over ranks the sync op runs in every mode: in evaluation with running statistics
        # normnorm makes no collective (per element), and a rank may hold no samples.
        if not dist.is_available() or not dist.is_initialized():
            if self.training or not self.track_running_stats:
                raise RuntimeError(f"normnorm: {type(self).__name__}: torch.distributed is not initialized "
                                   "(call torch.distributed.init_process_group first, or use "
                                   f"{type(self).__name__[len('Sync'):]} in one process)")
            return super().forward(input)
        group = self.process_group if self.process_group is not None else dist.group.WORLD
        if dist.get_world_size(group) == 1:
            return super().forward(input)
        track = self.track_running_stats
        mean = self.running_mean if track else None
        var = self.running_var if track else None
        lmbda = self.running_lmbda if track else None
        norm = self.running_norm if track else None
        count = self.num_batches_tracked if track else None
        op = torch.ops.normnorm.sync_batch_normal_norm_2d if self.two_d else torch.ops.normnorm.sync_batch_normal_norm_1d
        return op(input, self.num_features, self.weight, self.bias, mean, var, lmbda, norm, count, self.training,
                  self.eps, self.momentum, self.noise_train, self.order, self.alpha, self.standardize,
                  self.power_transform, self.estimator, self.newton_iterations, self.evaluation_map,
                  process_group=_script_process_group(group))

    def extra_repr(self) -> str:
        return super().extra_repr() + ", process_group={}".format(
            "WORLD" if self.process_group is None else self.process_group)


class SyncBatchNormalNorm1d(_SyncBatchNormalNorm):
    """BatchNormalNorm1d over the ranks of `process_group` (None: the default group). Input (N, C)."""
    two_d = False


class SyncBatchNormalNorm2d(_SyncBatchNormalNorm):
    """BatchNormalNorm2d over the ranks of `process_group` (None: the default group). Input (N, C, H, W)."""
    two_d = True


_SYNC = {modules.BatchNormalNorm1d: SyncBatchNormalNorm1d, modules.BatchNormalNorm2d: SyncBatchNormalNorm2d}
_ARGUMENTS = ("num_features", "order", "alpha", "iterations", "standardize", "affine", "track_running_stats",
              "momentum", "noise_train", "eps", "estimator", "newton_iterations", "power_transform", "evaluation_map")


def _sync_replacement(layer: nn.Module, process_group):
    """The synchronized layer for one of ours or a paper batch layer (converted first), or None."""
    if isinstance(layer, _SyncBatchNormalNorm):
        return None
    if not isinstance(layer, tuple(_SYNC)):
        layer = _ours_for_paper_layer(layer)
        if not isinstance(layer, tuple(_SYNC)):
            return None
    sync = _SYNC[type(layer)](**{name: getattr(layer, name) for name in _ARGUMENTS}, process_group=process_group)
    # Parameters and buffers: the same tensors (dtype, device, requires_grad and any
    # optimizer's references carry over), as torch.nn.SyncBatchNorm.convert_sync_batchnorm does.
    for name, parameter in layer.named_parameters(recurse=False):
        setattr(sync, name, parameter)
    for name, buffer in layer.named_buffers(recurse=False):
        setattr(sync, name, buffer)
    sync.train(layer.training)
    return sync


def convert_sync(model: nn.Module, process_group=None) -> nn.Module:
    """Replaces every batch layer in `model` (in place) by its synchronized form and returns the model.

    Converted: normnorm_torch's BatchNormalNorm1d/2d, and the paper's (anything convert()
    takes) by way of convert(). The new layers share the old ones' parameter and buffer
    tensors. `process_group`: the group to reduce over (None: the default group, resolved
    at each call). A model that is itself such a layer is returned converted.
    """
    top = _sync_replacement(model, process_group)
    if top is not None:
        return top
    for name, child in list(model.named_children()):
        sync = _sync_replacement(child, process_group)
        if sync is not None:
            setattr(model, name, sync)
        else:
            convert_sync(child, process_group)
    return model
