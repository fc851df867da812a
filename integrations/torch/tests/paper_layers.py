"""Eager reference layers written from the spec (docs/math.md), under the paper's class names.

They have the constructor signatures, attribute names, parameters and buffers the paper's
layers have (running_lmbda, running_mean, running_var, running_norm as buffers,
num_batches_tracked a plain int), so the tests can check that state_dicts load both ways
and that convert() recognizes them. The computation is autograd over plain tensor ops:
slow, and its gradient at h = 0 exactly is autograd's (|h|' = 0), which is why the tests
compare on inputs without values exactly at a group mean. bench/torch_step.py uses them
as the eager baseline.
"""

import math
from typing import List, Optional

import torch
from torch import Tensor, nn


def normal_norm(x: Tensor, dims: List[int], training: bool, noise_train: float, eps: float, order: int = 2,
                alpha: float = 1.0, mean: Optional[Tensor] = None, var: Optional[Tensor] = None,
                lmbda: Optional[Tensor] = None):
    """Section 2 of the spec on groups reduced over `dims` (keepdim). Returns (y, mu, v, lambda, norm)."""
    c = math.sqrt(eps)
    mu = x.mean(dims, keepdim=True) if mean is None else mean
    v = ((x - mu) ** 2).mean(dims, keepdim=True) if var is None else var
    h = (x - mu) / torch.sqrt(v + eps)
    s = torch.where(h >= 0, torch.ones_like(h), -torch.ones_like(h))
    a = h.abs()
    L = torch.log1p(a)
    if lmbda is None:
        d = (1 + a) * L - a
        A = (h * d).mean(dims, keepdim=True)
        g1 = A - (s * L).mean(dims, keepdim=True)
        if order == 1:
            lmbda = 1 - alpha * g1
        else:
            D = d.mean(dims, keepdim=True)
            e = s * ((1 + a) * L ** 2 - 2 * d)
            g2 = (h * e + (d - D) ** 2).mean(dims, keepdim=True) - 2 * A ** 2
            lmbda = 1 - alpha * g1 / (g2 + c)
    eta = 1 + s * (lmbda - 1)
    et = eta + c * torch.where(eta >= 0, torch.ones_like(eta), -torch.ones_like(eta))
    y = torch.where(eta.abs() > c, s * torch.expm1(et * L) / et, s * L)
    norm = (y - y.mean(dims, keepdim=True)).abs().mean(dims, keepdim=True).detach()
    if training and noise_train > 0:
        y = y + noise_train * norm * torch.randn_like(y)
    return y, mu, v, lmbda, norm


def _affine(module, affine, shape, device, dtype):
    if affine:
        module.weight = nn.Parameter(torch.ones(shape, device=device, dtype=dtype))
        module.bias = nn.Parameter(torch.zeros(shape, device=device, dtype=dtype))
    else:
        module.register_parameter("weight", None)
        module.register_parameter("bias", None)


class _Batch(nn.Module):
    dims = [0]

    def __init__(self, num_features, order=2, alpha=1.0, iterations=1, standardize=True, affine=True,
                 track_running_stats=True, momentum=0.1, noise_train=0.4, eps=1e-05, device=None):
        super().__init__()
        self.num_features, self.order, self.alpha, self.iterations = num_features, order, alpha, iterations
        self.standardize, self.affine, self.track_running_stats = standardize, affine, track_running_stats
        self.momentum, self.noise_train, self.eps = momentum, noise_train, eps
        self.num_batches_tracked = 0
        self.register_buffer("running_lmbda", torch.ones(num_features, device=device))
        self.register_buffer("running_mean", torch.zeros(num_features, device=device))
        self.register_buffer("running_var", torch.ones(num_features, device=device))
        self.register_buffer("running_norm", math.sqrt(2 / math.pi) * torch.ones(num_features, device=device))
        _affine(self, affine, (num_features,), device, None)

    def forward(self, x):
        view = [1, -1] + [1] * (x.dim() - 2)
        use_running = self.track_running_stats and not self.training
        kept = (lambda t: t.view(view)) if use_running else (lambda t: None)
        y, mu, v, lmbda, norm = normal_norm(
            x, self.dims, self.training, self.noise_train, self.eps, self.order, self.alpha,
            kept(self.running_mean), kept(self.running_var), kept(self.running_lmbda))
        if self.training and self.track_running_stats:
            self.num_batches_tracked += 1
            f = self.momentum if self.momentum is not None else 1.0 / self.num_batches_tracked
            m = x.numel() // x.shape[1]
            with torch.no_grad():
                for buffer, value in ((self.running_lmbda, lmbda), (self.running_mean, mu),
                                      (self.running_var, v * m / (m - 1)), (self.running_norm, norm * m / (m - 1))):
                    buffer.copy_(f * value.reshape(-1) + (1 - f) * buffer)
        if self.affine:
            y = y * self.weight.view(view) + self.bias.view(view)
        return y


class BatchNormalNorm1d(_Batch):
    dims = [0]


class BatchNormalNorm2d(_Batch):
    dims = [0, 2, 3]


class LayerNormalNorm(nn.Module):
    def __init__(self, normalized_shape, eps=1e-05, elementwise_affine=True, noise_train=1.0, device=None,
                 dtype=None, *args, **kwargs):
        super().__init__()
        if isinstance(normalized_shape, int):
            normalized_shape = (normalized_shape,)
        self.normalized_shape = torch.Size(normalized_shape)
        self.eps, self.elementwise_affine, self.noise_train = eps, elementwise_affine, noise_train
        _affine(self, elementwise_affine, self.normalized_shape, device, dtype)

    def forward(self, x):
        dims = list(range(x.dim() - len(self.normalized_shape), x.dim()))
        y = normal_norm(x, dims, self.training, self.noise_train, self.eps)[0]
        return y * self.weight + self.bias if self.elementwise_affine else y


class GroupNormalNorm(nn.Module):
    def __init__(self, num_channels, num_groups=32, eps=1e-05, affine=True, noise_train=0.4, device=None,
                 dtype=None, *args, **kwargs):
        super().__init__()
        self.num_channels, self.num_groups, self.eps, self.affine = num_channels, num_groups, eps, affine
        self.noise_train = noise_train
        _affine(self, affine, (num_channels,), device, dtype)

    def forward(self, x):
        y = normal_norm(x.reshape(x.shape[0], self.num_groups, -1), [2], self.training, self.noise_train,
                        self.eps)[0].reshape(x.shape)
        if not self.affine:
            return y
        view = [1, -1] + [1] * (x.dim() - 2)
        return y * self.weight.view(view) + self.bias.view(view)


class InstanceNormalNorm2d(nn.Module):
    def __init__(self, num_features, affine=True, eps=1e-05, noise_train=0.4, device=None, dtype=None,
                 *args, **kwargs):
        super().__init__()
        self.num_features, self.affine, self.eps, self.noise_train = num_features, affine, eps, noise_train
        _affine(self, affine, (num_features,), device, dtype)

    def forward(self, x):
        y = normal_norm(x, [2, 3], self.training, self.noise_train, self.eps)[0]
        return y * self.weight.view(1, -1, 1, 1) + self.bias.view(1, -1, 1, 1) if self.affine else y
