"""normnorm_torch's modules: state_dicts with the paper's layers both ways, convert(),
TorchScript, channels_last, thread counts, torch.manual_seed, and errors."""

import copy
import os
import sys
import unittest

import torch
from torch import nn

import normnorm_torch as nt

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import paper_layers as paper  # noqa: E402

D = torch.float64
FORMS = ("BatchNormalNorm1d", "BatchNormalNorm2d", "LayerNormalNorm", "GroupNormalNorm", "InstanceNormalNorm2d")
# Non-default constructor arguments, positional and keyword, as a paper user would write them.
ARGS = {
    "BatchNormalNorm1d": ((6,), dict(order=1, alpha=0.7, momentum=None, noise_train=0.0, eps=1e-4)),
    "BatchNormalNorm2d": ((6, 2, 0.8), dict(momentum=0.2, noise_train=0.0)),
    "LayerNormalNorm": (((4, 5),), dict(eps=1e-4, noise_train=0.0)),
    "GroupNormalNorm": ((6,), dict(num_groups=3, noise_train=0.0)),
    "InstanceNormalNorm2d": ((6,), dict(affine=True, noise_train=0.0)),
}
SHAPES = {"BatchNormalNorm1d": (16, 6), "BatchNormalNorm2d": (4, 6, 5, 3), "LayerNormalNorm": (3, 2, 4, 5),
          "GroupNormalNorm": (3, 6, 4, 5), "InstanceNormalNorm2d": (3, 6, 4, 5)}


def skewed(shape, seed, dtype=D):
    g = torch.Generator().manual_seed(seed)
    return (torch.randn(shape, generator=g, dtype=D).exp() + 0.2 * torch.randn(shape, generator=g, dtype=D)).to(dtype)


def randomize(module, seed):
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in module.parameters():
            p.copy_(1 + 0.3 * torch.randn(p.shape, generator=g, dtype=p.dtype))


def step(module, x, grad_seed):
    """One call with backward: output, input gradient, parameter gradients."""
    x = x.clone().requires_grad_(True)
    for p in module.parameters():
        p.grad = None
    y = module(x)
    y.backward(skewed(y.shape, grad_seed, y.dtype) - 1)
    return [y.detach(), x.grad] + [p.grad for p in module.parameters()]


def buffers(module):
    return {k: v.clone() for k, v in module.state_dict().items() if k.startswith("running")}


class StateDictTest(unittest.TestCase):
    def assert_close(self, a, b, label):
        self.assertTrue(torch.allclose(a, b, rtol=1e-10, atol=1e-12), "{}: max |diff| {:.3g}".format(
            label, (a - b).abs().max().item()))

    def test_paper_state_dict_loads_both_ways_and_gives_the_same_results(self):
        for name in FORMS:
            with self.subTest(name):
                args, kwargs = ARGS[name]
                theirs = getattr(paper, name)(*args, **kwargs).double()
                ours = getattr(nt, name)(*args, **kwargs).double()
                self.assertEqual(sorted(theirs.state_dict()), sorted(ours.state_dict()))
                randomize(theirs, 1)
                theirs.train()
                with torch.no_grad():
                    theirs(skewed(SHAPES[name], 2))  # running statistics away from their initial values
                ours.load_state_dict(theirs.state_dict())  # strict: same keys, same shapes
                if hasattr(theirs, "num_batches_tracked"):
                    ours.num_batches_tracked.fill_(theirs.num_batches_tracked)
                for k, mode in enumerate(("train", "train", "eval")):
                    theirs.train(mode == "train")
                    ours.train(mode == "train")
                    x = skewed(SHAPES[name], 10 + k)
                    for i, (a, b) in enumerate(zip(step(ours, x, 20 + k), step(theirs, x, 20 + k))):
                        self.assert_close(a, b, "{} call {} tensor {}".format(name, k, i))
                    for key, value in buffers(theirs).items():
                        self.assert_close(buffers(ours)[key], value, "{} call {} {}".format(name, k, key))
                back = getattr(paper, name)(*args, **kwargs).double()
                back.load_state_dict(ours.state_dict())  # and back, strict
                for key, value in ours.state_dict().items():
                    self.assertTrue(torch.equal(back.state_dict()[key], value), key)

    def test_convert_swaps_paper_layers_keeping_state(self):
        torch.manual_seed(0)
        model = nn.Sequential(nn.Conv2d(1, 6, 3), paper.BatchNormalNorm2d(6, momentum=None, noise_train=0.0),
                              nn.ReLU(),
                              nn.Sequential(paper.GroupNormalNorm(6, num_groups=2, noise_train=0.0),
                                            paper.InstanceNormalNorm2d(6, affine=False, noise_train=0.0)),
                              nn.Flatten(), nn.Linear(6 * 6 * 6, 8),
                              paper.BatchNormalNorm1d(8, noise_train=0.0), paper.LayerNormalNorm(8, noise_train=0.0))
        model.double()
        x = skewed((5, 1, 8, 8), 3)
        for _ in range(2):
            model(x)  # running statistics and num_batches_tracked move
        converted = nt.convert(copy.deepcopy(model))
        self.assertEqual([type(m).__module__ for m in converted.modules() if type(m).__name__ in FORMS],
                         ["normnorm_torch.modules"] * 5)
        self.assertEqual(converted[1].num_batches_tracked.item(), 2)
        for mode in ("train", "eval"):
            model.train(mode == "train")
            converted.train(mode == "train")
            for i, (a, b) in enumerate(zip(step(converted, x, 4), step(model, x, 4))):
                self.assert_close(a, b, "converted model, {} tensor {}".format(mode, i))
        self.assert_close(converted[1].running_var, model[1].running_var, "running_var")
        self.assertIsInstance(nt.convert(paper.LayerNormalNorm(4)), nt.LayerNormalNorm)


class ScriptTest(unittest.TestCase):
    def test_script_matches_eager_in_train_and_eval(self):
        for name in FORMS:
            with self.subTest(name):
                args, kwargs = ARGS[name]
                module = getattr(nt, name)(*args, **dict(kwargs, noise_train=0.4))
                randomize(module, 5)
                scripted = torch.jit.script(copy.deepcopy(module))
                x = skewed(SHAPES[name], 6, torch.float32)
                for training in (True, False):
                    module.train(training)
                    scripted.train(training)
                    torch.manual_seed(3)
                    a = step(module, x, 7)
                    torch.manual_seed(3)
                    b = step(scripted, x, 7)
                    for i, (u, v) in enumerate(zip(a, b)):
                        self.assertTrue(torch.equal(u, v), "{} training={} tensor {}".format(name, training, i))

    def test_trace_of_an_eval_model(self):
        model = nn.Sequential(nn.Conv2d(3, 6, 3, padding=1), nt.BatchNormalNorm2d(6), nn.ReLU(),
                              nt.GroupNormalNorm(6, num_groups=3), nn.Flatten(), nn.Linear(6 * 25, 4),
                              nt.LayerNormalNorm(4))
        x = skewed((8, 3, 5, 5), 8, torch.float32)
        model.train()
        model(x)
        model.eval()
        traced = torch.jit.trace(model, x)
        other = skewed((8, 3, 5, 5), 9, torch.float32)
        self.assertTrue(torch.equal(traced(other), model(other)))
        self.assertIn("normnorm::batch_normal_norm_2d", str(traced.inlined_graph))


class LayoutThreadsNoiseTest(unittest.TestCase):
    def test_channels_last_equals_contiguous(self):
        for name in ("BatchNormalNorm2d", "GroupNormalNorm", "InstanceNormalNorm2d"):
            for training in (True, False):
                with self.subTest(name=name, training=training):
                    args, kwargs = ARGS[name]
                    module = getattr(nt, name)(*args, **kwargs).float()
                    randomize(module, 11)
                    module.train()
                    module(skewed(SHAPES[name], 12, torch.float32))
                    module.train(training)
                    x = skewed((8, 6, 7, 9), 13, torch.float32)
                    before = buffers(module)
                    dense = step(module, x, 14)
                    after_dense = buffers(module)
                    for key, value in before.items():
                        module.state_dict()[key].copy_(value)
                    if hasattr(module, "num_batches_tracked"):
                        module.num_batches_tracked.sub_(int(training))
                    x_cl = x.to(memory_format=torch.channels_last)
                    cl = step(module, x_cl, 14)
                    self.assertTrue(cl[0].is_contiguous(memory_format=torch.channels_last))
                    self.assertTrue(cl[1].is_contiguous(memory_format=torch.channels_last))
                    for i, (a, b) in enumerate(zip(dense, cl)):
                        self.assertTrue(torch.allclose(a, b, rtol=2e-6, atol=2e-6), "tensor {}: {:.3g}".format(
                            i, (a - b).abs().max().item()))
                    for key, value in after_dense.items():
                        self.assertTrue(torch.allclose(buffers(module)[key], value, rtol=1e-6, atol=1e-7), key)

    def test_channels_last_draws_the_same_noise(self):
        for name in ("BatchNormalNorm2d", "GroupNormalNorm", "InstanceNormalNorm2d"):
            with self.subTest(name):
                args, kwargs = ARGS[name]
                module = getattr(nt, name)(*args, **dict(kwargs, noise_train=0.4))
                x = skewed((8, 6, 7, 9), 23, torch.float32)
                torch.manual_seed(24)
                dense = module(x)
                torch.manual_seed(24)
                cl = module(x.contiguous(memory_format=torch.channels_last))
                torch.manual_seed(25)
                other = module(x)
                self.assertTrue(torch.allclose(dense, cl, rtol=2e-6, atol=2e-6))
                self.assertFalse(torch.allclose(dense, other, rtol=1e-3, atol=1e-3))

    def test_one_and_two_threads_are_bit_identical(self):
        # Shapes large enough for normnorm to split the work. 16 channels: with a channel
        # count that is not a multiple of the SIMD width, the core's channels-last evaluation
        # map (lanes across channels) differs by an ulp between 1 and 2 threads (measured with
        # 6 channels; reported, a core matter).
        saved = torch.get_num_threads()
        cases = (("BatchNormalNorm2d", lambda: nt.BatchNormalNorm2d(16, momentum=0.2), (16, 16, 16, 16)),
                 ("LayerNormalNorm", lambda: nt.LayerNormalNorm((4, 5)), (512, 4, 5)),
                 ("InstanceNormalNorm2d", lambda: nt.InstanceNormalNorm2d(16), (8, 16, 32, 32)),
                 ("BatchNormalNorm1d", lambda: nt.BatchNormalNorm1d(16, momentum=None), (4096, 16)),
                 ("GroupNormalNorm", lambda: nt.GroupNormalNorm(16, num_groups=4), (16, 16, 32, 32)))
        try:
            for name, make, shape in cases:
                for fmt in (torch.contiguous_format, torch.channels_last):
                    if fmt == torch.channels_last and len(shape) != 4:
                        continue
                    with self.subTest(name=name, format=str(fmt)):
                        results = []
                        for threads in (1, 2):
                            torch.set_num_threads(threads)
                            module = make()
                            randomize(module, 15)
                            x = skewed(shape, 16, torch.float32).contiguous(memory_format=fmt)
                            torch.manual_seed(17)
                            out = step(module, x, 18) + list(buffers(module).values())
                            module.eval()
                            out.append(module(x).detach())
                            results.append(out)
                        for i, (a, b) in enumerate(zip(*results)):
                            self.assertTrue(torch.equal(a, b), "tensor {}".format(i))
        finally:
            torch.set_num_threads(saved)

    def test_manual_seed_reproduces_the_noise(self):
        for name in FORMS:
            with self.subTest(name):
                args, kwargs = ARGS[name]
                module = getattr(nt, name)(*args, **dict(kwargs, noise_train=0.4))
                x = skewed(SHAPES[name], 19, torch.float32)
                torch.manual_seed(21)
                first, second = module(x), module(x)
                torch.manual_seed(21)
                again = module(x)
                torch.manual_seed(22)
                other = module(x)
                self.assertTrue(torch.equal(first, again))
                self.assertFalse(torch.equal(first, second))
                self.assertFalse(torch.equal(first, other))
                module.eval()
                self.assertTrue(torch.equal(module(x), module(x)))  # no noise in evaluation


class ErrorTest(unittest.TestCase):
    """Each error reaches Python as RuntimeError with normnorm's message, and running
    statistics (and num_batches_tracked) stay exactly as they were."""

    def expect(self, module, x, message):
        module.train()
        tracked = isinstance(module, (nt.BatchNormalNorm1d, nt.BatchNormalNorm2d))
        before = {k: v.clone() for k, v in module.named_buffers()}
        with self.assertRaises(RuntimeError) as raised:
            module(x)
        text = str(raised.exception)
        self.assertIn(message, text)
        self.assertTrue(text.startswith("normnorm: "), text)
        for key, value in module.named_buffers():
            self.assertTrue(torch.equal(value, before[key]), key)
        return tracked

    def test_validation_errors(self):
        bn2d = nt.BatchNormalNorm2d(3)
        x = skewed((2, 3, 4, 5), 1, torch.float32)
        self.expect(bn2d, skewed((2, 4, 3, 5), 1, torch.float32), "expected 3 channels on axis 1, got (2, 4, 3, 5)")
        self.expect(bn2d, x[:, :, :, 0], "expected 4-D input (N, 3, H, W), got (2, 3, 4)")
        self.expect(nt.BatchNormalNorm1d(3), torch.randn(1, 3),
                    "training needs more than one value per channel, got input (1, 3)")
        nan = x.clone()
        nan[1, 1, 2, 2] = float("nan")
        self.expect(bn2d, nan, "training input group 1 contains NaN or Inf")
        self.expect(nt.BatchNormalNorm2d(3, eps=-1.0), x, "eps must be finite and >= 0")
        self.expect(nt.BatchNormalNorm2d(3, momentum=1.5), x, "momentum must be in [0, 1]")
        self.expect(nt.BatchNormalNorm2d(3, order=3), x, "order must be 1 or 2, got 3")
        self.expect(nt.BatchNormalNorm2d(3, noise_train=-0.1), x, "noise_train must be finite and >= 0")
        self.expect(nt.GroupNormalNorm(6, num_groups=4), torch.randn(2, 6, 3),
                    "num_channels (6) must be divisible by num_groups (4)")
        self.expect(nt.LayerNormalNorm(5), torch.randn(3, 4, 10), "expected input (..., 5) ending in normalized_shape, got (3, 4, 10)")
        self.expect(nt.BatchNormalNorm2d(3, estimator="bisection"), x, "estimator must be newton_step")
        self.expect(nt.InstanceNormalNorm2d(3, estimator="newton", newton_iterations=0), x, "newton_iterations")
        self.expect(nt.BatchNormalNorm2d(3).double(), x, "has dtype Double but the input has Float")
        short = nt.BatchNormalNorm2d(3)
        short.weight = nn.Parameter(torch.ones(2))
        self.expect(short, x, "weight must hold 3 values, got 2")
        print("errors: 14 cases, each a RuntimeError with normnorm's message, buffers untouched", file=sys.stderr)


if __name__ == "__main__":
    unittest.main(verbosity=2)
