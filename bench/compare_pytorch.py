#!/usr/bin/env python3
"""Time normnorm against PyTorch on the shapes of bench/normnorm_bench.cpp.

For every row (form, shape, mode, dtype, threads) three things are timed:

  native    PyTorch's own layer of the same kind (nn.BatchNorm1d/2d, nn.LayerNorm,
            nn.GroupNorm, nn.InstanceNorm2d(affine=True)): the speed users know;
  eager     normality normalization written in eager PyTorch straight from the spec
            (docs/math.md), as a researcher would prototype it; autograd does the backward;
  normnorm  bench/normnorm_bench, run as a subprocess for the matching row.

The forms batch_2d_nhwc, group_nhwc and instance_2d_nhwc are batch_2d, group and
instance_2d on channels-last input: the PyTorch sides get x (and the upstream gradient)
as torch.channels_last and the modules .to(memory_format=torch.channels_last); normnorm
runs its MemoryFormat::channels_last row of the same name.

The three are interleaved (native, eager, normnorm, native, eager, normnorm, ...,
--repeats times) so that load from other processes on a shared machine hits all of
them alike; each sample runs enough calls to last at least --min-sample-time seconds,
and the table gives the median sample (time per call).

Modes:
  train_fwd      .train(), input and parameters require grad, output discarded
                 (the forward of a training step, autograd graph recorded);
  train_fwd_bwd  .train(), forward + .backward() with a fixed upstream gradient,
                 gradients set to None before each call (optimizer.zero_grad());
  train_fwd_bwd_kept  normnorm with Execution::keep_noise (the forward keeps its draws for
                 the backward); the PyTorch sides run exactly as for train_fwd_bwd;
  eval_fwd       .eval() under torch.no_grad() (batch forms: running statistics
                 from a few training calls first).

Needs Debian's python3-torch (1.13); run it with Debian's interpreter (/usr/bin/python3)
if another python3 comes first on PATH.

  /usr/bin/python3 bench/compare_pytorch.py --threads 1 --dtype float
  /usr/bin/python3 bench/compare_pytorch.py --quick
  /usr/bin/python3 bench/compare_pytorch.py --check-golden tests/data/golden
"""

import argparse
import datetime
import gc
import json
import math
import os
import platform
import re
import shlex
import statistics
import subprocess
import sys
import time

import torch
from torch import nn

FORMS = ("batch_1d", "batch_2d", "layer", "group", "instance_2d", "batch_2d_nhwc", "group_nhwc", "instance_2d_nhwc")
# A form named <base>_nhwc is <base> on torch.channels_last input (normnorm's MemoryFormat::channels_last).
CHANNELS_LAST_SUFFIX = "_nhwc"
MODES = ("train_fwd", "train_fwd_bwd", "train_fwd_bwd_kept", "eval_fwd", "eval_fwd_poly")
# eval_fwd_poly: normnorm with EvaluationMap::polynomial (batch forms, float); the PyTorch
# sides run exactly as for eval_fwd.
POLY_FORMS = ("batch_1d", "batch_2d", "batch_2d_nhwc")
# bfloat16: normnorm stores tensors in bfloat16 and computes in float (parameters float);
# PyTorch 1.13's CPU BatchNorm2d and LayerNorm run bfloat16 modules (module.to(bfloat16)),
# its GroupNorm and InstanceNorm2d, and every norm in half, do not.
DTYPES = {"float": torch.float32, "double": torch.float64, "bfloat16": torch.bfloat16}
NARROW_DTYPES = ("bfloat16",)  # normnorm_bench has these rows at one thread, without eval_fwd_poly or train_fwd_bwd_kept
GROUPS = 32  # the group form's G in every benchmarked shape
BENCH_THREADS = (1, 2)  # the thread counts normnorm_bench registers

# (form, shape), in normnorm_bench's order. Keep in step with cases() in normnorm_bench.cpp.
SHAPES = (
    ("batch_1d", (128, 784)),
    ("batch_2d", (32, 64, 32, 32)),
    ("batch_2d", (8, 256, 14, 14)),
    ("layer", (64, 196, 384)),
    ("group", (16, 128, 28, 28)),
    ("instance_2d", (16, 64, 64, 64)),
    ("batch_2d_nhwc", (32, 64, 32, 32)),
    ("group_nhwc", (16, 128, 28, 28)),
    ("instance_2d_nhwc", (16, 64, 64, 64)),
)

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


# --------------------------------------------------------------------------------------
# Normality normalization in eager PyTorch, from the spec (docs/math.md).
# --------------------------------------------------------------------------------------
class EagerNormalNorm(nn.Module):
    """All five forms: the group's reduction axes and the affine shape differ, nothing else.

    form: batch_1d (N, C) | batch_2d (N, C, H, W) | layer (..., *normalized_shape)
          | group (N, C, ...) with num_groups | instance_2d (N, C, H, W)
    """

    def __init__(self, form, num_features=None, normalized_shape=None, num_groups=1, eps=1e-5,
                 momentum=0.1, noise=None, order=2, alpha=1.0):
        super().__init__()
        self.form = form
        self.eps = eps
        self.momentum = momentum
        self.order = order
        self.alpha = alpha
        self.num_groups = num_groups
        self.noise = (1.0 if form == "layer" else 0.4) if noise is None else noise
        self.normalized_shape = tuple(normalized_shape or ())
        affine = self.normalized_shape if form == "layer" else (num_features,)
        self.weight = nn.Parameter(torch.ones(affine))
        self.bias = nn.Parameter(torch.zeros(affine))
        self.batch_form = form in ("batch_1d", "batch_2d")
        if self.batch_form:
            self.register_buffer("running_mean", torch.zeros(num_features))
            self.register_buffer("running_var", torch.ones(num_features))
            self.register_buffer("running_lambda", torch.ones(num_features))
            self.register_buffer("running_norm", torch.full((num_features,), math.sqrt(2 / math.pi)))
            self.register_buffer("num_batches_tracked", torch.tensor(0, dtype=torch.long))

    def _grouped(self, x):
        """x viewed so that one group is the values over `dims` (keepdim reductions)."""
        if self.form == "batch_1d":
            return x, (0,)
        if self.form == "batch_2d":
            return x, (0, 2, 3)
        if self.form == "instance_2d":
            return x, (2, 3)
        if self.form == "group":
            return x.reshape(x.shape[0], self.num_groups, -1), (2,)
        k = len(self.normalized_shape)
        return x, tuple(range(x.dim() - k, x.dim()))

    def _lambda(self, h, s, a, L, dims):
        """One step from lambda = 1: Newton (order 2) or gradient (order 1)."""
        c = math.sqrt(self.eps)
        d = (1 + a) * L - a
        A = (h * d).mean(dims, keepdim=True)
        S = (s * L).mean(dims, keepdim=True)
        g1 = A - S
        if self.order == 1:
            return 1 - self.alpha * g1
        D = d.mean(dims, keepdim=True)
        e = s * ((1 + a) * L ** 2 - 2 * d)
        B = (h * e + (d - D) ** 2).mean(dims, keepdim=True)
        g2 = B - 2 * A ** 2
        return 1 - self.alpha * g1 / (g2 + c)

    def forward(self, x):
        c = math.sqrt(self.eps)
        xg, dims = self._grouped(x)
        use_running = self.batch_form and not self.training
        if self.batch_form:
            channel = (1, -1) if self.form == "batch_1d" else (1, -1, 1, 1)
        if use_running:
            mu = self.running_mean.view(channel)
            v = self.running_var.view(channel)
        else:
            mu = xg.mean(dims, keepdim=True)
            v = ((xg - mu) ** 2).mean(dims, keepdim=True)
        h = (xg - mu) / torch.sqrt(v + self.eps)
        s = 2 * (h >= 0).to(h.dtype) - 1  # sign with sign(0) = +1
        a = h.abs()
        L = torch.log1p(a)
        lam = self.running_lambda.view(channel) if use_running else self._lambda(h, s, a, L, dims)

        # Yeo-Johnson with the exponent shifted by c = sqrt(eps), as the paper's code does.
        eta = 1 + s * (lam - 1)
        et = eta + c * (2 * (eta >= 0).to(eta.dtype) - 1)
        y = torch.where(eta.abs() > c, s * (torch.pow(1 + a, et) - 1) / et, s * L)

        if self.training:
            m = y.mean(dims, keepdim=True)
            norm = (y - m).abs().mean(dims, keepdim=True).detach()
            if self.batch_form:
                self._update_running(mu, v, lam, norm, y.numel() // y.shape[1])
            if self.noise > 0:
                y = y + self.noise * norm * torch.randn_like(y)
        y = y.reshape(x.shape)
        if self.form == "layer":
            return y * self.weight + self.bias
        affine = (1, -1) + (1,) * (x.dim() - 2)
        return y * self.weight.view(affine) + self.bias.view(affine)

    @torch.no_grad()
    def _update_running(self, mu, v, lam, norm, m):
        self.num_batches_tracked += 1
        f = self.momentum if self.momentum is not None else 1.0 / float(self.num_batches_tracked)
        unbiased = m / (m - 1)
        for buffer, value in ((self.running_lambda, lam), (self.running_mean, mu),
                              (self.running_var, v * unbiased), (self.running_norm, norm * unbiased)):
            buffer.mul_(1 - f).add_(f * value.detach().reshape(-1))


def channels_last(form):
    return form.endswith(CHANNELS_LAST_SUFFIX)


def layer_form(form):
    """The layer a benchmarked form builds: batch_2d_nhwc builds batch_2d."""
    return form[:-len(CHANNELS_LAST_SUFFIX)] if channels_last(form) else form


def native_layer(form, shape):
    if form == "batch_1d":
        return nn.BatchNorm1d(shape[1])
    if form == "batch_2d":
        return nn.BatchNorm2d(shape[1])
    if form == "layer":
        return nn.LayerNorm(shape[-1])
    if form == "group":
        return nn.GroupNorm(GROUPS, shape[1])
    return nn.InstanceNorm2d(shape[1], affine=True)


def eager_layer(form, shape):
    if form == "layer":
        return EagerNormalNorm(form, normalized_shape=(shape[-1],))
    return EagerNormalNorm(form, num_features=shape[1], num_groups=GROUPS if form == "group" else 1)


# --------------------------------------------------------------------------------------
# Timing
# --------------------------------------------------------------------------------------
def make_step(module, mode, x, grad_y):
    """A zero-argument callable doing one call of `mode`, ready to time."""
    if mode in ("eval_fwd", "eval_fwd_poly"):
        module.train()
        with torch.no_grad():
            for _ in range(3):  # running statistics that are not the initial values
                module(x)
        module.eval()

        def step():
            with torch.no_grad():
                module(x)
        return step

    module.train()
    x = x.detach().clone().requires_grad_(True)
    params = [p for p in module.parameters() if p.requires_grad]
    if mode == "train_fwd":
        def step():
            module(x)
        return step

    def step():
        x.grad = None
        for p in params:
            p.grad = None
        module(x).backward(grad_y)
    return step


def calibrate(step, min_sample_time):
    """Warm up (at least 3 calls and 0.1 s), then the calls per sample."""
    start, calls = time.perf_counter(), 0
    while calls < 3 or time.perf_counter() - start < 0.1:
        step()
        calls += 1
    per_call = (time.perf_counter() - start) / calls
    return max(1, math.ceil(min_sample_time / per_call))


def torch_sample(step, calls):
    """Seconds per call over `calls` calls (garbage collector off, like timeit)."""
    step()  # re-warm caches and the allocator after the other contenders ran
    gc_was_enabled = gc.isenabled()
    gc.disable()
    try:
        start = time.perf_counter()
        for _ in range(calls):
            step()
        return (time.perf_counter() - start) / calls
    finally:
        if gc_was_enabled:
            gc.enable()


def bench_name(form, mode, dtype, threads, shape):
    name = "normnorm/{}/{}/{}/threads:{}/{}".format(form, mode, dtype, threads, "x".join(map(str, shape)))
    assert re.fullmatch(r"[A-Za-z0-9_/:]+", name), name  # nothing a regex would read specially
    return name


UNIT_SECONDS = {"ns": 1e-9, "us": 1e-6, "ms": 1e-3, "s": 1.0}


def normnorm_sample(bench, name, min_sample_time):
    """Seconds per call of one normnorm_bench row (one Google Benchmark run)."""
    cmd = [bench, "--benchmark_filter=^{}(/real_time)?$".format(name), "--benchmark_format=json",
           "--benchmark_min_time={}".format(min_sample_time)]
    done = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, universal_newlines=True)
    if done.returncode != 0:
        raise RuntimeError("{} failed ({}):\n{}".format(shlex.join(cmd), done.returncode, done.stderr))
    runs = [b for b in json.loads(done.stdout)["benchmarks"]
            if b.get("run_type", "iteration") == "iteration" and b["run_name"].split("/real_time")[0] == name]
    if len(runs) != 1:
        raise RuntimeError("{} gave {} matching rows (is the binary current?)".format(shlex.join(cmd), len(runs)))
    run = runs[0]
    if run.get("error_occurred"):
        raise RuntimeError("{}: {}".format(name, run.get("error_message")))
    return run["real_time"] * UNIT_SECONDS[run["time_unit"]]


def measure_row(args, bench, form, shape, mode, dtype, threads):
    torch.set_num_threads(threads)
    torch.manual_seed(args.seed)
    x = torch.randn(shape, dtype=DTYPES[dtype])
    grad_y = torch.randn(shape, dtype=DTYPES[dtype])
    base = layer_form(form)
    modules = (("native", native_layer(base, shape)), ("eager", eager_layer(base, shape)))
    if channels_last(form):
        # Same shape and values, (N, H, W, C) in memory; make_step's clone keeps the format.
        x = x.contiguous(memory_format=torch.channels_last)
        grad_y = grad_y.contiguous(memory_format=torch.channels_last)
        modules = tuple((label, m.to(memory_format=torch.channels_last)) for label, m in modules)
    contenders = {}
    for label, module in modules:
        step = make_step(module.to(DTYPES[dtype]), mode, x, grad_y)
        contenders[label] = (step, calibrate(step, args.min_sample_time))
    name = bench_name(form, mode, dtype, threads, shape)

    samples = {"native": [], "eager": [], "normnorm": []}
    for _ in range(args.repeats):
        for label in ("native", "eager"):
            step, calls = contenders[label]
            samples[label].append(torch_sample(step, calls))
        samples["normnorm"].append(normnorm_sample(bench, name, args.min_sample_time))
    del contenders
    gc.collect()
    return {"form": form, "shape": list(shape), "mode": mode, "dtype": dtype, "threads": threads,
            "bench_name": name, "samples_s": samples,
            "median_ms": {k: 1e3 * statistics.median(v) for k, v in samples.items()}}


# --------------------------------------------------------------------------------------
# Reporting
# --------------------------------------------------------------------------------------
def git_commit():
    try:
        head = subprocess.run(["git", "-C", REPO, "rev-parse", "--short", "HEAD"], stdout=subprocess.PIPE,
                              stderr=subprocess.DEVNULL, universal_newlines=True, check=True).stdout.strip()
        dirty = subprocess.run(["git", "-C", REPO, "status", "--porcelain", "--", "include"], stdout=subprocess.PIPE,
                               stderr=subprocess.DEVNULL, universal_newlines=True, check=True).stdout.strip()
        return head + (" + uncommitted changes in include/ (content hash {})".format(include_hash()) if dirty else "")
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def include_hash():
    """A short hash of every file under include/: names the exact headers measured."""
    import hashlib
    digest = hashlib.sha256()
    root = os.path.join(REPO, "include")
    for folder, subfolders, files in os.walk(root):
        subfolders.sort()
        for name in sorted(files):
            path = os.path.join(folder, name)
            digest.update(os.path.relpath(path, root).encode() + b"\0")
            with open(path, "rb") as f:
                digest.update(f.read() + b"\0")
    return digest.hexdigest()[:12]


def cpu_model():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def spread(values):
    return (max(values) - min(values)) / statistics.median(values)


def markdown(results, args, meta):
    lines = [
        "Measured {} on {} ({} logical CPUs), PyTorch {}, normnorm at commit {}.".format(
            meta["date"], meta["cpu"], meta["cpus"], meta["torch"], meta["commit"]),
        "",
        "Command: `{}`".format(meta["command"]),
        "",
    ]
    if meta["stale_binary"]:
        lines += ["**Warning: normnorm_bench was older than the headers in include/ (not rebuilt).**", ""]
    lines += [
        "Median of {} interleaved samples per cell, each sample at least {} s of calls; "
        "times are milliseconds per call. Load average (1 min) {:.1f} at the start, {:.1f} at the end.".format(
            args.repeats, args.min_sample_time, meta["load_start"], meta["load_end"]),
        "",
        "| form | shape | mode | dtype | threads | native ms | eager ms | normnorm ms "
        "| normnorm / native | eager / normnorm |",
        "|---|---|---|---|---|---:|---:|---:|---:|---:|",
    ]
    for r in results:
        m = r["median_ms"]
        lines.append("| {} | {} | {} | {} | {} | {:.3f} | {:.3f} | {:.3f} | {:.2f}x | {:.2f}x |".format(
            r["form"], "x".join(map(str, r["shape"])), r["mode"], r["dtype"], r["threads"],
            m["native"], m["eager"], m["normnorm"], m["normnorm"] / m["native"], m["eager"] / m["normnorm"]))
    if results:
        worst = max(((spread(r["samples_s"][k]), k, r) for r in results for k in r["samples_s"]),
                    key=lambda t: t[0])
        lines += ["", "Largest spread of a cell's samples, (max - min) / median: {:.0%} ({} {}).".format(
            worst[0], worst[1], worst[2]["bench_name"])]
    return "\n".join(lines) + "\n"


# --------------------------------------------------------------------------------------
# Checking the eager formulation against the golden vectors (noise 0, float64)
# --------------------------------------------------------------------------------------
def check_golden(directory):
    import numpy as np

    forms = {"batch_normal_norm_1d": "batch_1d", "batch_normal_norm_2d": "batch_2d",
             "layer_normal_norm": "layer", "group_normal_norm": "group",
             "instance_normal_norm_2d": "instance_2d"}
    worst_overall = 0.0
    for case in sorted(os.listdir(directory)):
        path = os.path.join(directory, case)
        if not os.path.isfile(os.path.join(path, "case.json")):
            continue
        with open(os.path.join(path, "case.json")) as f:
            spec = json.load(f)
        o, shape = spec["options"], spec["input_shape"]
        if spec["layer"] not in forms or (spec["layer"] == "batch_normal_norm_1d" and len(shape) != 2):
            continue  # the eager formulation here has the paper's five forms and shapes only
        form = forms[spec["layer"]]
        layer = EagerNormalNorm(form, num_features=shape[1], normalized_shape=o.get("normalized_shape"),
                                num_groups=o.get("num_groups", 1), eps=o.get("eps", 1e-5),
                                momentum=o.get("momentum", 0.1), noise=0.0, order=o.get("order", 2),
                                alpha=o.get("alpha", 1.0)).double()

        def load(name):
            return torch.from_numpy(np.load(os.path.join(path, name + ".npy")))

        with torch.no_grad():
            if layer.batch_form:  # sqrt(2/pi) in float64, not the float32 value .double() widened
                layer.running_norm.fill_(math.sqrt(2 / math.pi))
            layer.weight.copy_(load("weight"))
            layer.bias.copy_(load("bias"))
        worst = 0.0
        for k, step in enumerate(spec["steps"]):
            layer.train(step["mode"] == "train")
            x = load("step{}_x".format(k)).requires_grad_(True)
            layer.weight.grad = layer.bias.grad = None
            y = layer(x)
            y.backward(load("step{}_grad_y".format(k)))
            got = {"y": y, "grad_x": x.grad, "grad_weight": layer.weight.grad, "grad_bias": layer.bias.grad}
            if layer.batch_form:
                got.update(running_lmbda=layer.running_lambda, running_mean=layer.running_mean,
                           running_var=layer.running_var, running_norm=layer.running_norm)
            for key, value in got.items():
                want = load("step{}_{}".format(k, key))
                error = ((value.detach() - want).abs() / (1 + want.abs())).max().item()
                worst = max(worst, error)
        worst_overall = max(worst_overall, worst)
        print("{:24s} {:14s} max |error| / (1 + |value|) = {:.1e}".format(case, form, worst))
    print("worst: {:.1e}".format(worst_overall))
    return 0 if worst_overall < 1e-10 else 1


# --------------------------------------------------------------------------------------
def parse_list(text, allowed, kind):
    items = [t.strip() for t in text.split(",") if t.strip()]
    for t in items:
        if t not in allowed:
            raise SystemExit("unknown {} {!r}; choose from {}".format(kind, t, ", ".join(allowed)))
    return items


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--dtype", default="float", help="comma list of float, double, bfloat16 (default float)")
    p.add_argument("--threads", default="1", help="comma list of thread counts (default 1)")
    p.add_argument("--forms", default=",".join(FORMS), help="comma list (default all): " + ", ".join(FORMS))
    p.add_argument("--modes", default=",".join(MODES), help="comma list (default all): " + ", ".join(MODES))
    p.add_argument("--repeats", type=int, default=None, help="interleaved samples per cell (default 5; 3 with --quick)")
    p.add_argument("--min-sample-time", type=float, default=None,
                   help="seconds of calls per sample (default 0.2; 0.1 with --quick)")
    p.add_argument("--quick", action="store_true", help="only the smallest benchmarked shape of each form")
    p.add_argument("--bench", default=os.path.join("build", "bench", "normnorm_bench"),
                   help="path of normnorm_bench (default build/bench/normnorm_bench)")
    p.add_argument("--markdown", metavar="OUT.md", help="also write the table (with its header) to this file")
    p.add_argument("--json", metavar="OUT.json", help="also write every sample to this file")
    p.add_argument("--seed", type=int, default=0, help="torch.manual_seed for the inputs (default 0)")
    p.add_argument("--check-golden", metavar="DIR", nargs="?", const=os.path.join(REPO, "tests", "data", "golden"),
                   help="check the eager formulation against golden vectors (default tests/data/golden) and exit")
    args = p.parse_args()

    if args.check_golden:
        return check_golden(args.check_golden)

    args.repeats = args.repeats or (3 if args.quick else 5)
    args.min_sample_time = args.min_sample_time or (0.1 if args.quick else 0.2)
    dtypes = parse_list(args.dtype, DTYPES, "dtype")
    forms = parse_list(args.forms, FORMS, "form")
    modes = parse_list(args.modes, MODES, "mode")
    try:
        thread_counts = [int(t) for t in args.threads.split(",") if t.strip()]
    except ValueError:
        raise SystemExit("--threads takes a comma list of integers, e.g. 1,2")
    if not thread_counts or any(t not in BENCH_THREADS for t in thread_counts):
        raise SystemExit("--threads: normnorm_bench has rows for {} threads only".format(
            " and ".join(map(str, BENCH_THREADS))))
    if not os.access(args.bench, os.X_OK) and not os.path.isabs(args.bench):
        in_repo = os.path.join(REPO, args.bench)  # run from elsewhere than the repository's root
        if os.access(in_repo, os.X_OK):
            args.bench = in_repo
    if not os.access(args.bench, os.X_OK):
        raise SystemExit("{} not found: build it with  cmake --build build --target normnorm_bench  "
                         "(or pass --bench PATH)".format(args.bench))

    newest_header = max(os.path.getmtime(os.path.join(folder, name))
                        for folder, _, files in os.walk(os.path.join(REPO, "include")) for name in files)
    stale = os.path.getmtime(args.bench) < newest_header
    if stale:
        print("warning: {} is older than the newest header in include/: rebuild it to measure the current "
              "engine".format(args.bench), file=sys.stderr)

    shapes = [(f, s) for f, s in SHAPES if f in forms]
    if args.quick:
        smallest = {}
        for f, s in shapes:
            if f not in smallest or math.prod(s) < math.prod(smallest[f]):
                smallest[f] = s
        shapes = [(f, s) for f, s in shapes if smallest[f] == s]

    meta = {"date": datetime.datetime.now().strftime("%Y-%m-%d %H:%M"), "cpu": cpu_model(),
            "cpus": os.cpu_count(), "torch": torch.__version__, "commit": git_commit(),
            "load_start": os.getloadavg()[0], "stale_binary": stale, "command": " ".join(shlex.quote(a) for a in [os.path.relpath(sys.argv[0])] + sys.argv[1:])}
    results = []
    rows = [(f, s, m, d, t) for f, s in shapes for d in dtypes for t in thread_counts for m in modes
            if (m != "eval_fwd_poly" or (f in POLY_FORMS and d == "float"))
            and (d not in NARROW_DTYPES or (t == 1 and m not in ("eval_fwd_poly", "train_fwd_bwd_kept")))]
    for i, (form, shape, mode, dtype, threads) in enumerate(rows, 1):
        r = measure_row(args, args.bench, form, shape, mode, dtype, threads)
        m = r["median_ms"]
        print("[{}/{}] {}: native {:.3f} ms, eager {:.3f} ms, normnorm {:.3f} ms".format(
            i, len(rows), r["bench_name"], m["native"], m["eager"], m["normnorm"]), file=sys.stderr, flush=True)
        results.append(r)

    meta["load_end"] = os.getloadavg()[0]
    table = markdown(results, args, meta)
    print(table, end="")
    if args.markdown:
        with open(args.markdown, "w") as f:
            f.write(table)
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"meta": meta, "repeats": args.repeats, "min_sample_time_s": args.min_sample_time,
                       "rows": results}, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
