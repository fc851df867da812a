"""The five layers as nn.Modules calling torch.ops.normnorm.*.

Constructor arguments, their order and defaults, and the parameter and buffer names are
the paper's layers' (docs/torch.md has the table). normnorm's own options come after
them as keyword-only arguments:

  estimator          "newton_step" (the paper's one step), "gradient_step", "newton", "exact"
  newton_iterations  k for estimator="newton"
  power_transform    False: the plain normalization layer
  order, alpha, standardize   (the layer, group and instance forms: the batch forms take
                     them positionally, as the paper does)
  evaluation_map     batch forms: "exact" or "polynomial" (float only)

`iterations` (batch forms) is accepted and ignored, as in the paper's code: use
estimator="newton", newton_iterations=k for several steps.

num_batches_tracked is a buffer that is not saved in the state_dict (the paper keeps it
as a plain int attribute, so its state_dicts have no such key).
"""

import math
from typing import List, Optional, Tuple, Union

import torch
from torch import Tensor, nn

__all__ = ["BatchNormalNorm1d", "BatchNormalNorm2d", "LayerNormalNorm", "GroupNormalNorm", "InstanceNormalNorm2d"]


def _affine_parameters(module: nn.Module, affine: bool, shape, factory) -> None:
    if affine:
        module.weight = nn.Parameter(torch.ones(shape, **factory))
        module.bias = nn.Parameter(torch.zeros(shape, **factory))
    else:
        module.register_parameter("weight", None)
        module.register_parameter("bias", None)


class _BatchNormalNorm(nn.Module):
    __constants__ = ["num_features", "order", "alpha", "iterations", "standardize", "affine",
                     "track_running_stats", "noise_train", "eps", "estimator", "newton_iterations",
                     "power_transform", "evaluation_map", "two_d"]
    momentum: Optional[float]
    two_d: bool

    def __init__(self, num_features: int, order: int = 2, alpha: float = 1.0, iterations: int = 1,
                 standardize: bool = True, affine: bool = True, track_running_stats: bool = True,
                 momentum: Optional[float] = 0.1, noise_train: float = 0.4, eps: float = 1e-05, device=None,
                 *, dtype=None, estimator: str = "newton_step", newton_iterations: int = 1,
                 power_transform: bool = True, evaluation_map: str = "exact"):
        super().__init__()
        factory = {"device": device, "dtype": dtype}
        self.num_features = num_features
        self.order = order
        self.alpha = float(alpha)
        self.iterations = iterations
        self.standardize = standardize
        self.affine = affine
        self.track_running_stats = track_running_stats
        self.momentum = None if momentum is None else float(momentum)
        self.noise_train = float(noise_train)
        self.eps = float(eps)
        self.estimator = estimator
        self.newton_iterations = newton_iterations
        self.power_transform = power_transform
        self.evaluation_map = evaluation_map
        # Registered whatever track_running_stats says, as the paper does: same state_dict keys.
        self.register_buffer("running_lmbda", torch.ones(num_features, **factory))
        self.register_buffer("running_mean", torch.zeros(num_features, **factory))
        self.register_buffer("running_var", torch.ones(num_features, **factory))
        self.register_buffer("running_norm", torch.full((num_features,), math.sqrt(2.0 / math.pi), **factory))
        self.register_buffer("num_batches_tracked", torch.tensor(0, dtype=torch.long, device=device),
                             persistent=False)
        _affine_parameters(self, affine, (num_features,), factory)

    def forward(self, input: Tensor) -> Tensor:
        track = self.track_running_stats
        mean = self.running_mean if track else None
        var = self.running_var if track else None
        lmbda = self.running_lmbda if track else None
        norm = self.running_norm if track else None
        count = self.num_batches_tracked if track else None
        if self.two_d:
            return torch.ops.normnorm.batch_normal_norm_2d(
                input, self.num_features, self.weight, self.bias, mean, var, lmbda, norm, count, self.training, self.eps,
                self.momentum, self.noise_train, self.order, self.alpha, self.standardize, self.power_transform,
                self.estimator, self.newton_iterations, self.evaluation_map)
        return torch.ops.normnorm.batch_normal_norm_1d(
            input, self.num_features, self.weight, self.bias, mean, var, lmbda, norm, count, self.training, self.eps,
            self.momentum, self.noise_train, self.order, self.alpha, self.standardize, self.power_transform,
            self.estimator, self.newton_iterations, self.evaluation_map)

    def extra_repr(self) -> str:
        return ("{num_features}, order={order}, alpha={alpha}, eps={eps}, momentum={momentum}, "
                "noise_train={noise_train}, affine={affine}, track_running_stats={track_running_stats}, "
                "estimator={estimator}".format(**self.__dict__))


class BatchNormalNorm1d(_BatchNormalNorm):
    """Input (N, C): one group per channel, over the batch."""
    two_d = False


class BatchNormalNorm2d(_BatchNormalNorm):
    """Input (N, C, H, W), contiguous or channels_last: one group per channel, over N, H, W."""
    two_d = True


class _SampleNormalNorm(nn.Module):
    """What the layer, group and instance forms share: options, no running statistics."""
    __constants__ = ["eps", "noise_train", "order", "alpha", "standardize", "power_transform", "estimator",
                     "newton_iterations"]

    def _set_options(self, eps, noise_train, order, alpha, standardize, power_transform, estimator,
                     newton_iterations):
        self.eps = float(eps)
        self.noise_train = float(noise_train)
        self.order = order
        self.alpha = float(alpha)
        self.standardize = standardize
        self.power_transform = power_transform
        self.estimator = estimator
        self.newton_iterations = newton_iterations


class LayerNormalNorm(_SampleNormalNorm):
    """Input (..., *normalized_shape): one group per sample."""
    __constants__ = _SampleNormalNorm.__constants__ + ["normalized_shape", "elementwise_affine"]
    normalized_shape: Tuple[int, ...]

    def __init__(self, normalized_shape: Union[int, List[int], Tuple[int, ...], torch.Size], eps: float = 1e-05,
                 elementwise_affine: bool = True, noise_train: float = 1.0, device=None, dtype=None, *,
                 order: int = 2, alpha: float = 1.0, standardize: bool = True, power_transform: bool = True,
                 estimator: str = "newton_step", newton_iterations: int = 1):
        super().__init__()
        if isinstance(normalized_shape, int):
            normalized_shape = (normalized_shape,)
        self.normalized_shape = tuple(int(d) for d in normalized_shape)
        self.elementwise_affine = elementwise_affine
        self._set_options(eps, noise_train, order, alpha, standardize, power_transform, estimator, newton_iterations)
        _affine_parameters(self, elementwise_affine, self.normalized_shape, {"device": device, "dtype": dtype})

    def forward(self, input: Tensor) -> Tensor:
        return torch.ops.normnorm.layer_normal_norm(
            input, list(self.normalized_shape), self.weight, self.bias, self.training, self.eps, self.noise_train,
            self.order, self.alpha, self.standardize, self.power_transform, self.estimator, self.newton_iterations)

    def extra_repr(self) -> str:
        return "{normalized_shape}, eps={eps}, elementwise_affine={elementwise_affine}, noise_train={noise_train}, " \
               "estimator={estimator}".format(**self.__dict__)


class GroupNormalNorm(_SampleNormalNorm):
    """Input (N, C, ...), contiguous or channels_last: one group per sample and num_groups-th of the channels."""
    __constants__ = _SampleNormalNorm.__constants__ + ["num_channels", "num_groups", "affine"]

    def __init__(self, num_channels: int, num_groups: int = 32, eps: float = 1e-05, affine: bool = True,
                 noise_train: float = 0.4, device=None, dtype=None, *, order: int = 2, alpha: float = 1.0,
                 standardize: bool = True, power_transform: bool = True, estimator: str = "newton_step",
                 newton_iterations: int = 1):
        super().__init__()
        self.num_channels = num_channels
        self.num_groups = num_groups
        self.affine = affine
        self._set_options(eps, noise_train, order, alpha, standardize, power_transform, estimator, newton_iterations)
        _affine_parameters(self, affine, (num_channels,), {"device": device, "dtype": dtype})

    def forward(self, input: Tensor) -> Tensor:
        return torch.ops.normnorm.group_normal_norm(
            input, self.num_channels, self.num_groups, self.weight, self.bias, self.training, self.eps, self.noise_train, self.order,
            self.alpha, self.standardize, self.power_transform, self.estimator, self.newton_iterations)

    def extra_repr(self) -> str:
        return "{num_channels}, num_groups={num_groups}, eps={eps}, affine={affine}, noise_train={noise_train}, " \
               "estimator={estimator}".format(**self.__dict__)


class InstanceNormalNorm2d(_SampleNormalNorm):
    """Input (N, C, H, W), contiguous or channels_last: one group per sample and channel."""
    __constants__ = _SampleNormalNorm.__constants__ + ["num_features", "affine"]

    def __init__(self, num_features: int, affine: bool = True, eps: float = 1e-05, noise_train: float = 0.4,
                 device=None, dtype=None, *, order: int = 2, alpha: float = 1.0, standardize: bool = True,
                 power_transform: bool = True, estimator: str = "newton_step", newton_iterations: int = 1):
        super().__init__()
        self.num_features = num_features
        self.affine = affine
        self._set_options(eps, noise_train, order, alpha, standardize, power_transform, estimator, newton_iterations)
        _affine_parameters(self, affine, (num_features,), {"device": device, "dtype": dtype})

    def forward(self, input: Tensor) -> Tensor:
        return torch.ops.normnorm.instance_normal_norm_2d(
            input, self.num_features, self.weight, self.bias, self.training, self.eps, self.noise_train, self.order, self.alpha,
            self.standardize, self.power_transform, self.estimator, self.newton_iterations)

    def extra_repr(self) -> str:
        return "{num_features}, eps={eps}, affine={affine}, noise_train={noise_train}, " \
               "estimator={estimator}".format(**self.__dict__)
