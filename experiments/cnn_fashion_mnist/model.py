"""A narrow CIFAR-style ResNet (3x3 stem, three stages of basic blocks) with a pluggable
normalization layer, and the arms of the experiment."""

import os
import sys
from typing import Callable

import torch
from torch import nn
import torch.nn.functional as F

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
# The eager, pure-PyTorch statement of the paper's layers (under the paper's class names)
# lives with the torch tests; the convert and eager arms build the model from it.
sys.path.insert(0, os.path.join(REPO, "integrations", "torch", "tests"))

ARMS = ("batchnorm", "transform", "normality", "convert", "eager")
NOISE = 0.4  # the spec's (and paper's) noise factor for the batch form


def norm_factory(arm: str) -> Callable[[int], nn.Module]:
    """The 2-D normalization layer of an arm, as a function of the channel count."""
    if arm == "batchnorm":
        return nn.BatchNorm2d
    if arm in ("convert", "eager"):
        import paper_layers  # the paper's signature; "convert" swaps it for normnorm afterwards
        return lambda c: paper_layers.BatchNormalNorm2d(c, noise_train=NOISE)
    import normnorm_torch
    noise = 0.0 if arm == "transform" else NOISE
    return lambda c: normnorm_torch.BatchNormalNorm2d(c, noise_train=noise)


class BasicBlock(nn.Module):
    def __init__(self, in_channels: int, out_channels: int, stride: int, norm: Callable[[int], nn.Module]):
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, out_channels, 3, stride, 1, bias=False)
        self.norm1 = norm(out_channels)
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, 1, 1, bias=False)
        self.norm2 = norm(out_channels)
        self.shortcut = nn.Sequential()
        if stride != 1 or in_channels != out_channels:
            # The projection shortcut's norm is replaced too (every norm layer is the arm's).
            self.shortcut = nn.Sequential(nn.Conv2d(in_channels, out_channels, 1, stride, bias=False),
                                          norm(out_channels))

    def forward(self, x):
        out = F.relu(self.norm1(self.conv1(x)))
        out = self.norm2(self.conv2(out))
        return F.relu(out + self.shortcut(x))


class ResNet(nn.Module):
    def __init__(self, norm: Callable[[int], nn.Module], width: int = 16, blocks: int = 2, classes: int = 10):
        super().__init__()
        self.stem = nn.Conv2d(1, width, 3, 1, 1, bias=False)
        self.stem_norm = norm(width)
        stages, channels = [], width
        for index, out_channels in enumerate((width, 2 * width, 4 * width)):
            layers = []
            for block in range(blocks):
                stride = 2 if index > 0 and block == 0 else 1
                layers.append(BasicBlock(channels, out_channels, stride, norm))
                channels = out_channels
            stages.append(nn.Sequential(*layers))
        self.stages = nn.Sequential(*stages)
        self.fc = nn.Linear(channels, classes)

    def forward(self, x):
        x = F.relu(self.stem_norm(self.stem(x)))
        x = self.stages(x)
        return self.fc(torch.flatten(F.adaptive_avg_pool2d(x, 1), 1))


def norm_layers(model: nn.Module):
    """(name, module) of every normalization layer, in forward order of definition."""
    kinds = ("BatchNorm2d", "BatchNormalNorm2d")
    return [(name, m) for name, m in model.named_modules() if type(m).__name__ in kinds]


def build(arm: str, seed: int, width: int, blocks: int) -> nn.Module:
    """The arm's model with the seed's initialization.

    Every arm is built under the same seed, and the convolution and linear weights are then
    copied from the BatchNorm2d model built under that seed, so the arms of a seed start
    from the same weights whatever their norm layers draw at construction (they draw
    nothing: all of them start at weight 1, bias 0).
    """
    torch.manual_seed(seed)
    reference = ResNet(nn.BatchNorm2d, width, blocks)
    torch.manual_seed(seed)
    model = ResNet(norm_factory(arm), width, blocks)
    shared = {k: v for k, v in reference.state_dict().items()
              if not any(k.startswith(name + ".") for name, _ in norm_layers(reference))}
    missing = set(shared) - set(model.state_dict())
    if missing:
        raise RuntimeError(f"arm {arm}: parameters missing from the model: {sorted(missing)}")
    model.load_state_dict(shared, strict=False)
    if arm == "convert":
        import normnorm_torch
        model = normnorm_torch.convert(model)
        left = [name for name, m in norm_layers(model) if not isinstance(m, normnorm_torch.BatchNormalNorm2d)]
        if left:
            raise RuntimeError(f"convert left paper layers in place: {left}")
    return model
