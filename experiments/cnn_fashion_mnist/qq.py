"""The paper's Gaussianity measure: R^2 of a normal Q-Q plot, and its collection from a
model's normalization layers through forward hooks."""

import copy
import functools
import math

import torch
from torch import nn
import torch.nn.functional as F


@functools.lru_cache(maxsize=16)  # a few sample sizes per network, reused
def normal_order_statistic_medians(n: int) -> torch.Tensor:
    """Filliben's estimate of the medians of the n order statistics of a standard normal
    sample (the theoretical quantiles of a normal probability plot, as scipy's probplot)."""
    i = torch.arange(1, n + 1, dtype=torch.float64)
    p = (i - 0.3175) / (n + 0.365)
    p[-1] = 0.5 ** (1.0 / n)
    p[0] = 1.0 - p[-1]
    return math.sqrt(2.0) * torch.erfinv(2.0 * p - 1.0)


def qq_r2(values: torch.Tensor) -> float:
    """R^2 of the least-squares line through the normal Q-Q plot of `values` (the squared
    correlation of the sorted values with the normal quantiles); 0 for a constant sample."""
    x = values.detach().reshape(-1).to(torch.float64).sort().values
    q = normal_order_statistic_medians(x.numel())
    xc, qc = x - x.mean(), q - q.mean()
    sxx = float((xc * xc).sum())
    if sxx == 0.0:
        return 0.0
    r = float((xc * qc).sum()) / math.sqrt(sxx * float((qc * qc).sum()))
    return min(1.0, r * r)  # rounding can put r^2 a hair above 1


def pre_affine(layer: nn.Module):
    """A function giving the layer's normalized values before its affine map, in evaluation
    mode (call it before hooks are put on the layer: it copies the layer).

    BatchNorm2d: x standardized with the running statistics (F.batch_norm without weight
    and bias). The normality layers: a copy of the layer with weight and bias removed, run
    on the same input, i.e. the same computation minus the affine: exact, no division by
    the learned weight.
    """
    if isinstance(layer, nn.BatchNorm2d):
        return lambda x: F.batch_norm(x, layer.running_mean, layer.running_var, None, None, False, 0.0, layer.eps)
    shadow = copy.deepcopy(layer).eval()
    shadow.weight = None
    shadow.bias = None
    shadow.affine = False
    return shadow


@torch.no_grad()
def layer_r2(model: nn.Module, layers, batches, channels: int = 20):
    """Per layer name: the mean R^2 over the first `channels` channels (all if fewer) of
    every batch in `batches`, with the model in evaluation mode. Also returns the per-layer
    count of (channel, batch) samples averaged."""
    sums = {name: 0.0 for name, _ in layers}
    counts = {name: 0 for name, _ in layers}

    unaffine = {name: pre_affine(m) for name, m in layers}

    def hook_for(name):
        def hook(module, inputs, output):
            z = unaffine[name](inputs[0])
            for c in range(min(channels, z.shape[1])):
                sums[name] += qq_r2(z[:, c])
                counts[name] += 1
        return hook

    handles = [m.register_forward_hook(hook_for(name)) for name, m in layers]
    was_training = model.training
    model.eval()
    try:
        for x in batches:
            model(x)
    finally:
        for h in handles:
            h.remove()
        model.train(was_training)
    return {name: sums[name] / counts[name] for name, _ in layers}, counts
