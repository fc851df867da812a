"""torch.autograd.gradcheck (float64) of every op: form x estimator x affine x train/eval.

Each input has one group whose values are symmetric integers (times 0.5) with one value
exactly at the group's mean, so h = 0 exactly there: the gradient must be the true one.
Training runs without noise: the noise term xi * norm * n has no gradient by definition
(norm is detached), so it is not a differentiable function of x that gradcheck could
check. test_noise_gradients checks the noisy backward instead: grad_input equals the
noiseless one and grad_weight is sum(g * z) with z the noisy, pre-affine output.
"""

import itertools
import math
import sys
import unittest

import torch

import normnorm_torch  # noqa: F401  (loads torch.ops.normnorm)

ops = torch.ops.normnorm
D = torch.float64
ESTIMATORS = (("newton_step", 1), ("newton", 3), ("exact", 1))


def ramp(count):
    """count (odd) symmetric values with the middle one exactly 0: an exact group mean."""
    assert count % 2 == 1
    return (torch.arange(count, dtype=D) - (count - 1) // 2) * 0.5


def skewed(shape, seed):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(shape, generator=g, dtype=D).exp() + 0.1 * torch.randn(shape, generator=g, dtype=D)


# form -> (input with a zero-h group, channels of the affine parameters, call(x, w, b, training, **options))
def batch_1d_case():
    x = skewed((7, 3), 1)
    x[:, 0] = ramp(7)
    return x, 3


def batch_2d_case():
    x = skewed((3, 2, 3, 3), 2)
    x[:, 0] = ramp(27).reshape(3, 3, 3)
    return x, 2


def layer_case():
    x = skewed((2, 3, 5), 3)
    x[0] = ramp(15).reshape(3, 5)
    return x, (3, 5)


def group_case():
    x = skewed((2, 6, 3), 4)
    x[1, 3:6] = ramp(9).reshape(3, 3)
    return x, 6


def instance_case():
    x = skewed((2, 3, 3, 3), 5)
    x[1, 2] = ramp(9).reshape(3, 3)
    return x, 3


def running(channels):
    """Running statistics that are not the initial values (eval uses them)."""
    return [torch.linspace(-0.2, 0.3, channels, dtype=D), torch.linspace(0.8, 1.5, channels, dtype=D),
            torch.linspace(0.7, 1.4, channels, dtype=D), torch.full((channels,), 0.8, dtype=D),
            torch.tensor(0)]


def call(form, x, w, b, training, shape, estimator, iterations, noise):
    opts = dict(noise_train=noise, estimator=estimator, newton_iterations=iterations)
    if form in ("batch_1d", "batch_2d"):
        op = ops.batch_normal_norm_1d if form == "batch_1d" else ops.batch_normal_norm_2d
        return op(x, shape, w, b, *running(shape), training, **opts)
    if form == "layer":
        return ops.layer_normal_norm(x, list(shape), w, b, training, **opts)
    if form == "group":
        return ops.group_normal_norm(x, shape, 2, w, b, training, **opts)
    return ops.instance_normal_norm_2d(x, shape, w, b, training, **opts)


CASES = {"batch_1d": batch_1d_case, "batch_2d": batch_2d_case, "layer": layer_case, "group": group_case,
         "instance_2d": instance_case}


class GradcheckTest(unittest.TestCase):
    def test_every_form_estimator_affine_mode(self):
        results = []
        for form, (estimator, k), affine, training in itertools.product(
                CASES, ESTIMATORS, (True, False), (True, False)):
            noise = 0.0
            x, shape = CASES[form]()
            x.requires_grad_(True)
            inputs = [x]
            if affine:
                g = torch.Generator().manual_seed(7)
                w = (1 + 0.3 * torch.randn(shape, generator=g, dtype=D)).requires_grad_(True)
                b = (0.1 * torch.randn(shape, generator=g, dtype=D)).requires_grad_(True)
                inputs += [w, b]

            def f(*args):
                w_, b_ = (args[1], args[2]) if affine else (None, None)
                return call(form, args[0], w_, b_, training, shape, estimator, k, noise)

            name = "{} {}({}) affine={} {}".format(form, estimator, k, affine, "train" if training else "eval")
            with self.subTest(name):
                ok = torch.autograd.gradcheck(f, tuple(inputs), eps=1e-6, atol=1e-6, rtol=1e-5)
                self.assertTrue(ok)
                results.append(name)
        print("gradcheck passed: {} cases ({} forms x {} estimators x affine on/off x train/eval), "
              "float64, one group per input with h = 0 exactly".format(len(results), len(CASES), len(ESTIMATORS)),
              file=sys.stderr)
        self.assertEqual(len(results), len(CASES) * len(ESTIMATORS) * 2 * 2)

    def test_noise_gradients(self):
        for form in CASES:
            with self.subTest(form):
                x, shape = CASES[form]()
                g = torch.Generator().manual_seed(9)
                w = (1 + 0.3 * torch.randn(shape, generator=g, dtype=D)).requires_grad_(True)
                b = (0.1 * torch.randn(shape, generator=g, dtype=D)).requires_grad_(True)
                grad_y = torch.randn(x.shape, generator=g, dtype=D)
                got = {}
                for noise in (0.0, 0.4):
                    xs = x.clone().requires_grad_(True)
                    torch.manual_seed(5)
                    y = call(form, xs, w, b, True, shape, "newton_step", 1, noise)
                    got[noise] = (y.detach(), torch.autograd.grad(y, (xs, w, b), grad_y))
                (y0, (gx0, _, _)), (y1, (gx1, gw1, gb1)) = got[0.0], got[0.4]
                self.assertGreater((y1 - y0).abs().max().item(), 1e-3)  # there is noise
                self.assertTrue(torch.allclose(gx1, gx0, rtol=1e-10, atol=1e-12))
                view = [-1] + [1] * (x.dim() - 2) if form != "layer" else list(shape)
                z = (y1 - b.detach().view(view)) / w.detach().view(view)
                reduce_dims = [d for d in range(x.dim()) if form == "layer" and d < x.dim() - len(shape)
                               or form != "layer" and d != 1]
                self.assertTrue(torch.allclose(gw1, (grad_y * z).sum(reduce_dims), rtol=1e-10, atol=1e-12))
                self.assertTrue(torch.allclose(gb1, grad_y.sum(reduce_dims), rtol=1e-10, atol=1e-12))

    def test_double_backward_is_refused(self):
        x = torch.randn(4, 3, dtype=D, requires_grad=True)
        y = ops.batch_normal_norm_1d(x, 3, None, None, None, None, None, None, None, True, noise_train=0.0)
        with self.assertRaisesRegex(RuntimeError, "double backward .* is not supported"):
            torch.autograd.grad((y ** 2).sum(), x, create_graph=True)
        (g,) = torch.autograd.grad((y ** 2).sum(), x)  # first order still works
        self.assertEqual(g.shape, x.shape)

    def test_gradient_at_the_group_mean_is_the_true_one(self):
        # A batch-1d channel (-1, 0, 1) x 0.5: at the middle value the paper's code drops
        # psi_h = 1; the true derivative, checked by central differences, keeps it.
        x = torch.tensor([[-0.5], [0.0], [0.5]], dtype=D, requires_grad=True)
        f = lambda t: ops.batch_normal_norm_1d(t, 1, None, None, None, None, None, None, None, True, noise_train=0.0)
        y = f(x)
        grad_y = torch.tensor([[0.3], [1.0], [-0.2]], dtype=D)
        (grad_x,) = torch.autograd.grad(y, x, grad_y)
        numeric = torch.zeros(3, dtype=D)
        for i in range(3):
            step = torch.zeros_like(x)
            step[i, 0] = 1e-6
            numeric[i] = ((f(x + step) - f(x - step)) * grad_y).sum() / 2e-6
        self.assertTrue(torch.allclose(grad_x.reshape(-1), numeric, atol=1e-7), (grad_x, numeric))
        self.assertGreater(abs(grad_x[1, 0].item()), 0.1)


if __name__ == "__main__":
    unittest.main(verbosity=2)
