#!/usr/bin/env python3
"""normnorm_torch against PyTorch's native layers and an eager formulation, in one run.

Part 1, per form (float32): training forward+backward and evaluation forward of
  native    PyTorch's layer of the same kind (BatchNorm1d/2d, LayerNorm, GroupNorm,
            InstanceNorm2d(affine=True));
  eager     normality normalization in eager PyTorch from the spec
            (integrations/torch/tests/paper_layers.py, the tests' reference layers);
  normnorm  normnorm_torch's module,
at 1 and 2 threads.
Part 2: one whole training step (forward, backward, SGD update) of a narrow ResNet (3x3
stem, stages of 16/32/64 channels with two basic blocks each, batch 128 of 1x28x28), with
every norm layer one of: BatchNorm2d, normnorm_torch.BatchNormalNorm2d, the eager
BatchNormalNorm2d; GroupNorm and normnorm_torch.GroupNormalNorm (8 groups) too.

Contenders are interleaved (each sample runs every contender in turn), so load from
other processes hits them alike; each cell is the median of --repeats samples.

  PYTHONPATH=build/python /usr/bin/python3 bench/torch_step.py            # ~4 minutes
  /usr/bin/python3 bench/torch_step.py --quick                            # ~1 minute
"""

import argparse
import datetime
import gc
import os
import statistics
import subprocess
import sys
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.dont_write_bytecode = True  # no __pycache__ in the source tree for paper_layers
sys.path.insert(0, os.path.join(REPO, "build", "python"))
sys.path.insert(0, os.path.join(REPO, "integrations", "torch", "tests"))

import torch  # noqa: E402
from torch import nn  # noqa: E402

import normnorm_torch as nt  # noqa: E402
import paper_layers as eager  # noqa: E402

GROUPS = 32
SHAPES = (  # the smaller shape of each form in bench/compare_pytorch.py
    ("batch_1d", (128, 784)),
    ("batch_2d", (32, 64, 32, 32)),
    ("layer", (64, 196, 384)),
    ("group", (16, 128, 28, 28)),
    ("instance_2d", (16, 64, 64, 64)),
)


def layers(form, shape):
    """(native, eager, normnorm) modules for one form and input shape."""
    c = shape[1]
    if form == "batch_1d":
        return nn.BatchNorm1d(c), eager.BatchNormalNorm1d(c), nt.BatchNormalNorm1d(c)
    if form == "batch_2d":
        return nn.BatchNorm2d(c), eager.BatchNormalNorm2d(c), nt.BatchNormalNorm2d(c)
    if form == "layer":
        return nn.LayerNorm(shape[-1]), eager.LayerNormalNorm(shape[-1]), nt.LayerNormalNorm(shape[-1])
    if form == "group":
        return nn.GroupNorm(GROUPS, c), eager.GroupNormalNorm(c, GROUPS), nt.GroupNormalNorm(c, GROUPS)
    return nn.InstanceNorm2d(c, affine=True), eager.InstanceNormalNorm2d(c), nt.InstanceNormalNorm2d(c)


def layer_step(module, mode, x, grad_y):
    if mode == "eval":
        module.train()
        with torch.no_grad():
            module(x)
        module.eval()

        def run():
            with torch.no_grad():
                module(x)
        return run
    module.train()
    x = x.clone().requires_grad_(True)
    params = list(module.parameters())

    def run():
        x.grad = None
        for p in params:
            p.grad = None
        module(x).backward(grad_y)
    return run


# --- the narrow ResNet --------------------------------------------------------------------
class BasicBlock(nn.Module):
    def __init__(self, cin, cout, stride, norm):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.norm1 = norm(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.norm2 = norm(cout)
        self.shortcut = nn.Sequential()
        if stride != 1 or cin != cout:
            self.shortcut = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), norm(cout))

    def forward(self, x):
        y = torch.relu(self.norm1(self.conv1(x)))
        return torch.relu(self.norm2(self.conv2(y)) + self.shortcut(x))


def resnet(norm):
    blocks, cin = [], 16
    for cout, stride in ((16, 1), (32, 2), (64, 2)):
        blocks += [BasicBlock(cin, cout, stride, norm), BasicBlock(cout, cout, 1, norm)]
        cin = cout
    return nn.Sequential(nn.Conv2d(1, 16, 3, 1, 1, bias=False), norm(16), nn.ReLU(), *blocks,
                         nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(64, 10))


NORMS = {
    "BatchNorm2d (PyTorch)": nn.BatchNorm2d,
    "normnorm_torch.BatchNormalNorm2d": nt.BatchNormalNorm2d,
    "eager BatchNormalNorm2d (spec)": eager.BatchNormalNorm2d,
    "GroupNorm(8) (PyTorch)": lambda c: nn.GroupNorm(8, c),
    "normnorm_torch.GroupNormalNorm(8)": lambda c: nt.GroupNormalNorm(c, 8),
}


def resnet_step(norm, batch):
    torch.manual_seed(0)
    model = resnet(norm)
    sgd = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    x = torch.randn(batch, 1, 28, 28)
    y = torch.randint(0, 10, (batch,))
    model.train()

    def run():
        sgd.zero_grad(set_to_none=True)
        nn.functional.cross_entropy(model(x), y).backward()
        sgd.step()
    return run


# --- timing ---------------------------------------------------------------------------------
def calls_for(run, min_time):
    start, calls = time.perf_counter(), 0
    while calls < 2 or time.perf_counter() - start < 0.1:
        run()
        calls += 1
    return max(1, round(min_time / ((time.perf_counter() - start) / calls)))


def sample(run, calls):
    run()
    gc.disable()
    try:
        start = time.perf_counter()
        for _ in range(calls):
            run()
        return (time.perf_counter() - start) / calls
    finally:
        gc.enable()


def interleaved(contenders, repeats, min_time):
    """Median seconds per call of each zero-argument callable, sampled in turn."""
    calls = {k: calls_for(run, min_time) for k, run in contenders.items()}
    samples = {k: [] for k in contenders}
    for _ in range(repeats):
        for k, run in contenders.items():
            samples[k].append(sample(run, calls[k]))
    return {k: statistics.median(v) for k, v in samples.items()}


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--repeats", type=int, default=None, help="interleaved samples per cell (default 5; 3 --quick)")
    p.add_argument("--min-sample-time", type=float, default=None, help="seconds per sample (0.3; 0.1 --quick)")
    p.add_argument("--quick", action="store_true", help="fewer, shorter samples")
    p.add_argument("--skip-layers", action="store_true", help="only the ResNet step")
    p.add_argument("--batch", type=int, default=128, help="ResNet batch (default 128)")
    p.add_argument("--resnet-threads", default="2", help="comma list of thread counts for the ResNet (default 2)")
    args = p.parse_args()
    repeats = args.repeats or (3 if args.quick else 5)
    min_time = args.min_sample_time or (0.1 if args.quick else 0.3)

    commit = subprocess.run(["git", "-C", REPO, "rev-parse", "--short", "HEAD"], stdout=subprocess.PIPE,
                            universal_newlines=True).stdout.strip()
    print("Measured {} with PyTorch {}, normnorm at {}, {} logical CPUs; median of {} interleaved samples "
          "of >= {} s each; load average {:.1f} at the start.\n".format(
              datetime.datetime.now().strftime("%Y-%m-%d %H:%M"), torch.__version__, commit, os.cpu_count(),
              repeats, min_time, os.getloadavg()[0]))

    if not args.skip_layers:
        print("| form | shape | mode | threads | native ms | eager ms | normnorm ms | normnorm / native "
              "| eager / normnorm |")
        print("|---|---|---|---:|---:|---:|---:|---:|---:|")
        for form, shape in SHAPES:
            for threads in (1, 2):
                torch.set_num_threads(threads)
                for mode in ("train_fwd_bwd", "eval"):
                    torch.manual_seed(0)
                    x = torch.randn(shape).exp()
                    grad_y = torch.randn(shape)
                    native, eager_layer, ours = layers(form, shape)
                    t = interleaved({"native": layer_step(native, mode, x, grad_y),
                                     "eager": layer_step(eager_layer, mode, x, grad_y),
                                     "normnorm": layer_step(ours, mode, x, grad_y)}, repeats, min_time)
                    print("| {} | {} | {} | {} | {:.2f} | {:.2f} | {:.2f} | {:.2f}x | {:.1f}x |".format(
                        form, "x".join(map(str, shape)), mode, threads, 1e3 * t["native"], 1e3 * t["eager"],
                        1e3 * t["normnorm"], t["normnorm"] / t["native"], t["eager"] / t["normnorm"]), flush=True)
        print()

    for threads in [int(t) for t in args.resnet_threads.split(",")]:
        torch.set_num_threads(threads)
        t = interleaved({name: resnet_step(norm, args.batch) for name, norm in NORMS.items()}, repeats, min_time)
        base = t["BatchNorm2d (PyTorch)"]
        print("Narrow ResNet (3x3 stem, stages 16/32/64 x 2 basic blocks), batch {} of 1x28x28, one training "
              "step (forward, backward, SGD), {} thread(s):\n".format(args.batch, threads))
        print("| every norm layer | ms per step | / BatchNorm2d |")
        print("|---|---:|---:|")
        for name, seconds in t.items():
            print("| {} | {:.1f} | {:.2f}x |".format(name, 1e3 * seconds, seconds / base))
        print(flush=True)
    print("load average {:.1f} at the end".format(os.getloadavg()[0]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
