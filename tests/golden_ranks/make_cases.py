#!/usr/bin/python3
"""Golden cases for the 1-D/3-D forms: BatchNormalNorm1d on (N, C, L), BatchNormalNorm3d,
InstanceNormalNorm1d and InstanceNormalNorm3d.

The paper's code has no such forms, so these vectors are not the paper's: they are computed
here in float64 by an eager PyTorch formulation written from the definition in the spec
(normality-normalization.md, sections 1-3), with autograd giving the gradients. The 1-D and
3-D forms are derived from the 2-D ones: a group is one channel over every axis but C (batch
forms: over N too; instance forms: per sample), exactly as PyTorch's BatchNorm1d/3d and
InstanceNorm1d/3d generalize their 2-D versions; everything else (lambda step, transform,
running statistics with M the group size, the affine per channel) is unchanged.

Trusting the formulation: `--check` replays every existing golden case of the batch, instance
and group forms (made by the paper's code) and prints the largest difference; before the new
cases were written it gave, relative to max(1, |want|): bn2d_4x3x5x6 3.7e-15, bn2d_2x2x1x1
2.2e-16, the three bn1d cases <= 1.6e-15, gn_4x6x5x5_g3 1.3e-14, gn_2x4x3x2_g4 2.2e-15 and
in2d_3x4x6x5 1.4e-13 (its step-0 grad_x, on groups skewed almost to the limit: one value 5.2
standard deviations out in a group of 30; its outputs agree to 8e-15). It also checks that the groups are PyTorch's: the standardized
values equal F.batch_norm / F.instance_norm on (N, C, L) and (N, C, D, H, W) inputs (1.3e-15).

Usage (Debian's python3-torch and python3-numpy):
  /usr/bin/python3 tests/golden_ranks/make_cases.py --check   # the formulation vs existing cases
  /usr/bin/python3 tests/golden_ranks/make_cases.py           # (re)write the new cases
Writes tests/data/golden/<case>/ in the format of tests/data/golden/FORMAT.md, noise factor 0,
from fixed seeds (rerunning gives the same files).
"""

import argparse
import json
import math
import os

import numpy as np
import torch

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
GOLDEN = os.path.join(REPO, "tests", "data", "golden")


def sign(t):
    """+1 where t >= 0, -1 elsewhere (the spec's sign, with sign(0) = +1); no gradient."""
    return torch.where(t >= 0, torch.ones_like(t), -torch.ones_like(t)).detach()


def one_step_lambda(h, order, alpha, c):
    """Section 2: one Newton (order 2) or gradient (order 1) step from lambda = 1, per row."""
    s = sign(h)
    a = s * h
    L = torch.log1p(a)
    d = (1 + a) * L - a
    A = (h * d).mean(1, keepdim=True)
    g1 = A - (s * L).mean(1, keepdim=True)
    if order == 1:
        return 1 - alpha * g1
    D = d.mean(1, keepdim=True)
    e = s * ((1 + a) * L ** 2 - 2 * d)
    B = (h * e + (d - D) ** 2).mean(1, keepdim=True)
    g2 = B - 2 * A ** 2
    return 1 - alpha * g1 / (g2 + c)


def yeo_johnson(h, lam, c):
    """Section 2's power transform, with the exponent shifted by c."""
    s = sign(h)
    a = s * h
    eta = 1 + s * (lam - 1)
    et = eta + sign(eta) * c
    power = s * (torch.pow(1 + a, et) - 1) / et
    return torch.where(eta.abs() > c, power, s * torch.log1p(a))


class EagerNormalNorm:
    """One layer object, rows = groups. kind: 'batch' (any rank >= 2), 'instance', 'group'."""

    def __init__(self, kind, channels, num_groups=1, order=2, alpha=1.0, momentum=0.1, eps=1e-5):
        self.kind, self.channels, self.num_groups = kind, channels, num_groups
        self.order, self.alpha, self.momentum, self.eps = order, alpha, momentum, eps
        self.c = math.sqrt(eps)
        f64 = torch.float64
        self.running_lambda = torch.ones(channels, dtype=f64)
        self.running_mean = torch.zeros(channels, dtype=f64)
        self.running_var = torch.ones(channels, dtype=f64)
        self.running_norm = torch.full((channels,), math.sqrt(2 / math.pi), dtype=f64)
        self.num_batches_tracked = 0
        self.lam = None  # the last training call's lambda, per row

    def rows(self, x):
        if self.kind == "batch":  # one channel over N and every spatial axis
            return x.transpose(0, 1).reshape(self.channels, -1)
        groups = self.channels if self.kind == "instance" else self.num_groups
        return x.reshape(x.shape[0] * groups, -1)

    def unrows(self, rows, shape):
        if self.kind == "batch":
            return rows.reshape((shape[1], shape[0]) + tuple(shape[2:])).transpose(0, 1)
        return rows.reshape(shape)

    def forward(self, x, weight, bias, train):
        rows = self.rows(x)
        if self.kind == "batch" and not train:  # section 3: the running statistics, constants
            mu = self.running_mean[:, None]
            v = self.running_var[:, None]
            lam = self.running_lambda[:, None]
            h = (rows - mu) / torch.sqrt(v + self.eps)
        else:
            mu = rows.mean(1, keepdim=True)
            v = ((rows - mu) ** 2).mean(1, keepdim=True)  # biased
            h = (rows - mu) / torch.sqrt(v + self.eps)
            lam = one_step_lambda(h, self.order, self.alpha, self.c)
        y = yeo_johnson(h, lam, self.c)
        # Noise factor 0: z = y. (norm would carry no gradient; it feeds running_norm.)
        if self.kind == "batch" and train:
            self.update_running(mu, v, lam, y)
        if train:
            self.lam = lam.detach().reshape(-1)
        affine_shape = (1, self.channels) + (1,) * (x.dim() - 2)
        return self.unrows(y, x.shape) * weight.reshape(affine_shape) + bias.reshape(affine_shape)

    def update_running(self, mu, v, lam, y):
        m = y.shape[1]
        self.num_batches_tracked += 1
        f = self.momentum if self.momentum is not None else 1.0 / self.num_batches_tracked
        norm = (y - y.mean(1, keepdim=True)).abs().mean(1)
        with torch.no_grad():
            self.running_lambda = f * lam.reshape(-1) + (1 - f) * self.running_lambda
            self.running_mean = f * mu.reshape(-1) + (1 - f) * self.running_mean
            self.running_var = f * v.reshape(-1) * m / (m - 1) + (1 - f) * self.running_var
            self.running_norm = f * norm.detach() * m / (m - 1) + (1 - f) * self.running_norm


KINDS = {"batch_normal_norm_1d": "batch", "batch_normal_norm_2d": "batch", "batch_normal_norm_3d": "batch",
         "instance_normal_norm_1d": "instance", "instance_normal_norm_2d": "instance",
         "instance_normal_norm_3d": "instance", "group_normal_norm": "group"}


def layer_for(spec):
    o = spec["options"]
    return EagerNormalNorm(KINDS[spec["layer"]], spec["input_shape"][1], num_groups=o.get("num_groups", 1),
                           order=o.get("order", 2), alpha=o.get("alpha", 1.0), momentum=o.get("momentum", 0.1),
                           eps=o.get("eps", 1e-5))


def run_steps(spec, weight, bias, inputs, grads):
    """Replays the case's calls on one layer; returns {file stem: array} per step."""
    layer = layer_for(spec)
    outputs = []
    for step, x0, gy in zip(spec["steps"], inputs, grads):
        train = step["mode"] == "train"
        x = torch.from_numpy(x0).clone().requires_grad_(True)
        w = torch.from_numpy(weight).clone().requires_grad_(True)
        b = torch.from_numpy(bias).clone().requires_grad_(True)
        y = layer.forward(x, w, b, train)
        y.backward(torch.from_numpy(gy))
        got = {"x": x0, "y": y, "grad_y": gy, "grad_x": x.grad, "grad_weight": w.grad, "grad_bias": b.grad}
        if layer.kind == "batch":
            if train:
                got["lambda"] = layer.lam
            got.update(running_lmbda=layer.running_lambda, running_mean=layer.running_mean,
                       running_var=layer.running_var, running_norm=layer.running_norm)
        outputs.append({k: np.ascontiguousarray(v.detach().numpy() if torch.is_tensor(v) else v, dtype="<f8")
                        for k, v in got.items()})
    return outputs


def check(directory, names=None):
    """Largest difference, relative to max(1, |want|), between this formulation and each case."""
    worst_overall = 0.0
    for case in sorted(names or os.listdir(directory)):
        path = os.path.join(directory, case)
        if not os.path.isfile(os.path.join(path, "case.json")):
            continue
        with open(os.path.join(path, "case.json")) as f:
            spec = json.load(f)
        if spec["layer"] not in KINDS:
            continue  # the layer form has no per-channel group; not needed here

        def load(name):
            return np.load(os.path.join(path, name + ".npy"))

        steps = range(len(spec["steps"]))
        got = run_steps(spec, load("weight"), load("bias"), [load("step%d_x" % k) for k in steps],
                        [load("step%d_grad_y" % k) for k in steps])
        worst = 0.0
        for k, step in enumerate(spec["steps"]):
            for stem in step["files"]:
                name = stem.split("_", 1)[1]
                want = load(stem)
                diff = np.abs(got[k][name] - want) / np.maximum(1.0, np.abs(want))
                worst = max(worst, float(diff.max()))
        print("%-28s %-26s max diff %.1e" % (case, spec["layer"], worst))
        worst_overall = max(worst_overall, worst)
    print("largest: %.1e" % worst_overall)
    return worst_overall


def check_grouping():
    """The groups are PyTorch's: the standardized rows equal F.batch_norm / F.instance_norm."""
    worst = 0.0
    rng = np.random.default_rng(1)
    for kind, shape in [("batch", (4, 3, 7)), ("batch", (3, 2, 3, 4, 5)), ("instance", (3, 4, 9)),
                        ("instance", (2, 3, 3, 4, 5))]:
        x = torch.from_numpy(rng.standard_normal(shape))
        layer = EagerNormalNorm(kind, shape[1])
        rows = layer.rows(x)
        h = (rows - rows.mean(1, keepdim=True)) / torch.sqrt(rows.var(1, unbiased=False, keepdim=True) + 1e-5)
        if kind == "batch":
            want = torch.nn.functional.batch_norm(x, None, None, training=True, eps=1e-5)
        else:
            want = torch.nn.functional.instance_norm(x, eps=1e-5)
        worst = max(worst, float((layer.unrows(h, x.shape) - want).abs().max()))
    print("groups vs PyTorch's batch_norm / instance_norm on (N, C, L) and (N, C, D, H, W): max diff %.1e" % worst)
    return worst


def draw(rng, distribution, shape):
    z = rng.standard_normal(shape)
    if distribution == "left":  # long left tail
        return 0.5 - np.exp(0.8 * z) + 0.2 * rng.standard_normal(shape)
    if distribution == "right":  # long right tail
        return np.exp(0.7 * z) - 1.0 + 0.2 * rng.standard_normal(shape)
    if distribution == "heavy":  # both tails heavy: Student t, 3 degrees of freedom
        return 1.5 * rng.standard_t(3, shape)
    raise ValueError(distribution)


# name, layer, input shape, options, distribution, modes of the calls
CASES = [
    ("bn1d_ncl_4x3x7", "batch_normal_norm_1d", [4, 3, 7],
     {"order": 2, "alpha": 1.0, "momentum": 0.1, "eps": 1e-05, "affine": True}, "left", ["train", "train", "eval"]),
    ("bn1d_ncl_o1_a0.5_mNone_5x2x6", "batch_normal_norm_1d", [5, 2, 6],
     {"order": 1, "alpha": 0.5, "momentum": None, "eps": 1e-05, "affine": True}, "heavy", ["train", "train", "eval"]),
    ("bn3d_3x2x3x4x5", "batch_normal_norm_3d", [3, 2, 3, 4, 5],
     {"order": 2, "alpha": 1.0, "momentum": 0.1, "eps": 1e-05, "affine": True}, "right", ["train", "train", "eval"]),
    ("bn3d_o2_a0.5_mNone_2x3x2x3x2", "batch_normal_norm_3d", [2, 3, 2, 3, 2],
     {"order": 2, "alpha": 0.5, "momentum": None, "eps": 1e-05, "affine": True}, "heavy", ["train", "train", "eval"]),
    ("in1d_3x4x9", "instance_normal_norm_1d", [3, 4, 9], {"eps": 1e-05, "affine": True}, "left", ["train", "eval"]),
    ("in1d_o1_a0.5_2x3x11", "instance_normal_norm_1d", [2, 3, 11],
     {"order": 1, "alpha": 0.5, "eps": 1e-05, "affine": True}, "heavy", ["train", "eval"]),
    ("in3d_2x3x3x4x5", "instance_normal_norm_3d", [2, 3, 3, 4, 5], {"eps": 1e-05, "affine": True}, "right",
     ["train", "eval"]),
]


def write_case(directory, index, name, layer, shape, options, distribution, modes):
    rng = np.random.default_rng(20260 + index)
    channels = shape[1]
    weight = 1.0 + 0.3 * rng.standard_normal(channels)
    bias = 0.2 * rng.standard_normal(channels)
    inputs = [draw(rng, distribution, shape) for _ in modes]
    grads = [rng.standard_normal(shape) for _ in modes]
    batch = KINDS[layer] == "batch"
    steps = []
    for k, mode in enumerate(modes):
        stems = ["x", "y", "grad_y", "grad_x", "grad_weight", "grad_bias"]
        if batch:
            stems += (["lambda"] if mode == "train" else []) + ["running_lmbda", "running_mean", "running_var",
                                                                 "running_norm"]
        steps.append({"mode": mode, "files": ["step%d_%s" % (k, s) for s in stems]})
    spec = {"layer": layer, "options": options, "input_shape": shape, "distribution": distribution, "steps": steps}
    got = run_steps(spec, weight, bias, inputs, grads)
    path = os.path.join(directory, name)
    os.makedirs(path, exist_ok=True)
    with open(os.path.join(path, "case.json"), "w") as f:
        f.write(json.dumps(spec, indent=1))
    np.save(os.path.join(path, "weight.npy"), np.ascontiguousarray(weight, dtype="<f8"))
    np.save(os.path.join(path, "bias.npy"), np.ascontiguousarray(bias, dtype="<f8"))
    for k, step in enumerate(steps):
        for stem in step["files"]:
            np.save(os.path.join(path, stem + ".npy"), got[k][stem.split("_", 1)[1]])
    print("wrote", path)


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--check", metavar="DIR", nargs="?", const=GOLDEN,
                   help="compare the formulation with the cases in DIR (default tests/data/golden) and exit")
    p.add_argument("--out", default=GOLDEN, help="where to write the new cases (default tests/data/golden)")
    args = p.parse_args()
    torch.set_default_dtype(torch.float64)
    if args.check:
        return 0 if check(args.check) <= 1e-12 and check_grouping() <= 1e-12 else 1
    for index, case in enumerate(CASES):
        write_case(args.out, index, *case)
    # Read back what was written: the files replay to what was computed.
    return 0 if check(args.out, [c[0] for c in CASES]) == 0.0 else 1


if __name__ == "__main__":
    raise SystemExit(main())
