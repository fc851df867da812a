"""Every golden case (tests/data/golden: the paper's code in float64, noise 0) through the
normnorm_torch modules, in float64 and float32: outputs, gradients and running statistics
after every step, and the batch forms' lambda (running_lmbda with momentum 1 is the batch
lambda, checked against stepK_lambda on a second module)."""

import json
import os
import sys
import unittest

import numpy as np
import torch

import normnorm_torch as nt

GOLDEN = os.environ.get("NORMNORM_GOLDEN_DIR", os.path.join(os.path.dirname(__file__), "..", "..", "..", "tests",
                                                             "data", "golden"))
# (rtol, atol) of |got - want| <= atol + rtol |want|, as tests/conformance uses.
TOLERANCE = {torch.float64: (1e-9, 1e-12), torch.float32: (1e-4, 1e-5)}


# The layers normnorm_torch has: the paper's five (BatchNormalNorm1d also on (N, C, L)).
# The golden directory also holds cases of the 3-D and instance 1-D forms, which have no
# PyTorch module here.
TORCH_LAYERS = {"batch_normal_norm_1d", "batch_normal_norm_2d", "layer_normal_norm", "group_normal_norm",
                "instance_normal_norm_2d"}


def cases():
    found = []
    for c in sorted(os.listdir(GOLDEN)):
        path = os.path.join(GOLDEN, c, "case.json")
        if os.path.isfile(path):
            with open(path) as f:
                if json.load(f)["layer"] in TORCH_LAYERS:
                    found.append(c)
    return found


def make_module(spec, dtype, momentum_override=None):
    o, shape, layer = spec["options"], spec["input_shape"], spec["layer"]
    common = dict(eps=o.get("eps", 1e-5), noise_train=0.0, dtype=dtype)
    if layer.startswith("batch_normal_norm"):
        cls = nt.BatchNormalNorm1d if layer.endswith("1d") else nt.BatchNormalNorm2d
        momentum = o.get("momentum", 0.1) if momentum_override is None else momentum_override
        return cls(shape[1], order=o.get("order", 2), alpha=o.get("alpha", 1.0), affine=o.get("affine", True),
                   momentum=momentum, **common)
    if layer == "layer_normal_norm":
        return nt.LayerNormalNorm(o["normalized_shape"], elementwise_affine=o.get("elementwise_affine", True),
                                  **common)
    if layer == "group_normal_norm":
        return nt.GroupNormalNorm(shape[1], num_groups=o["num_groups"], affine=o.get("affine", True), **common)
    return nt.InstanceNormalNorm2d(shape[1], affine=o.get("affine", True), **common)


class GoldenTest(unittest.TestCase):
    def load(self, case, name, dtype):
        return torch.from_numpy(np.load(os.path.join(GOLDEN, case, name + ".npy"))).to(dtype)

    def check(self, label, got, want, dtype):
        rtol, atol = TOLERANCE[dtype]
        got = got.detach().to(torch.float64)
        want = want.to(torch.float64)
        excess = ((got - want).abs() - (atol + rtol * want.abs())).max().item()
        self.assertLessEqual(excess, 0.0, "{}: max |error| {:.3g}".format(label, (got - want).abs().max().item()))

    def run_case(self, case, dtype):
        with open(os.path.join(GOLDEN, case, "case.json")) as f:
            spec = json.load(f)
        module = make_module(spec, dtype)
        batch = spec["layer"].startswith("batch")
        # A twin with momentum 1: its running_lmbda after a training step is that step's lambda.
        twin = make_module(spec, dtype, momentum_override=1.0) if batch else None
        with torch.no_grad():
            for m in filter(None, (module, twin)):
                m.weight.copy_(self.load(case, "weight", dtype))
                m.bias.copy_(self.load(case, "bias", dtype))
        checked = 0
        for k, step in enumerate(spec["steps"]):
            training = step["mode"] == "train"
            module.train(training)
            x = self.load(case, "step{}_x".format(k), dtype).requires_grad_(True)
            module.weight.grad = module.bias.grad = None
            y = module(x)
            y.backward(self.load(case, "step{}_grad_y".format(k), dtype))
            got = {"y": y, "grad_x": x.grad, "grad_weight": module.weight.grad, "grad_bias": module.bias.grad}
            if batch:
                got.update(running_lmbda=module.running_lmbda, running_mean=module.running_mean,
                           running_var=module.running_var, running_norm=module.running_norm)
                if training:
                    twin.train()
                    twin(x.detach())
                    got["lambda"] = twin.running_lmbda
            for name, value in got.items():
                self.check("{} {} step {} {}".format(case, dtype, k, name), value,
                           self.load(case, "step{}_{}".format(k, name), dtype), dtype)
                checked += 1
        return checked

    def test_every_case_float64_and_float32(self):
        all_cases = cases()
        self.assertGreaterEqual(len(all_cases), 10)
        total = 0
        for case in all_cases:
            for dtype in (torch.float64, torch.float32):
                with self.subTest(case=case, dtype=dtype):
                    total += self.run_case(case, dtype)
        print("golden: {} cases x float64/float32, {} tensors compared".format(len(all_cases), total),
              file=sys.stderr)


if __name__ == "__main__":
    unittest.main(verbosity=2)
