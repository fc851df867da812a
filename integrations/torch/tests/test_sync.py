"""SyncBatchNormalNorm1d/2d and convert_sync over 2 processes (torch.distributed, Gloo on
127.0.0.1) against one process on the whole batch.

Each case splits one global batch unevenly over the ranks (one case gives rank 0 no
samples) and runs two training calls with noise (forward and backward) and an evaluation
call. Compared with the one-process module on the concatenated batch: outputs,
grad_input, grad weight/bias (summed over the ranks), running statistics (the same bits on
every rank). Then a DistributedDataParallel training step (SGD) of a small model converted
with convert_sync against the one-process step; and an evaluation call on one rank alone,
which must make no collective; and a call whose options differ between the ranks, which
every rank must refuse. Error: max |a - b| / max |b| over the tensor; at most 1e-12
in double and 1e-5 in float.
"""

import datetime
import faulthandler
import gc
import os
import socket
import tempfile
import time
import unittest

import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from torch import nn

import normnorm_torch as nt

WORLD = 2
DEADLINE = 180  # seconds for the 2 processes; a normal run takes a few seconds
TOLERANCE = {torch.float64: 1e-12, torch.float32: 1e-5}

# name: (form, global shape, samples per rank, dtype, channels_last, constructor keywords)
CASES = {
    "1d_double": ("1d", (8, 6), (5, 3), torch.float64, False, {}),
    "1d_float": ("1d", (8, 6), (5, 3), torch.float32, False, {}),
    "2d_double": ("2d", (8, 4, 5, 3), (5, 3), torch.float64, False, {}),
    "2d_float": ("2d", (8, 4, 5, 3), (5, 3), torch.float32, False, {}),
    "2d_double_rank0_empty": ("2d", (8, 4, 5, 3), (0, 8), torch.float64, False, {}),
    "2d_double_channels_last": ("2d", (8, 4, 5, 3), (3, 5), torch.float64, True, {}),
    # Evaluation takes the batch's statistics, so it reduces too.
    "2d_double_no_running_stats": ("2d", (8, 4, 5, 3), (6, 2), torch.float64, False,
                                   dict(track_running_stats=False)),
    "1d_double_order1_cumulative": ("1d", (8, 6), (2, 6), torch.float64, False, dict(order=1, momentum=None)),
}


def skewed(shape, seed, dtype):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(shape, generator=g, dtype=torch.float64).exp() + 0.2 * torch.randn(shape, generator=g,
                                                                                         dtype=torch.float64)
    return x.to(dtype)


def make_layer(name, sync):
    form, shape, _, dtype, _, kwargs = CASES[name]
    cls = {("1d", False): nt.BatchNormalNorm1d, ("2d", False): nt.BatchNormalNorm2d,
           ("1d", True): nt.SyncBatchNormalNorm1d, ("2d", True): nt.SyncBatchNormalNorm2d}[form, sync]
    layer = cls(shape[1], dtype=dtype, **kwargs)
    g = torch.Generator().manual_seed(11)
    with torch.no_grad():
        layer.weight.copy_(1 + 0.3 * torch.randn(shape[1], generator=g, dtype=torch.float64))
        layer.bias.copy_(0.3 * torch.randn(shape[1], generator=g, dtype=torch.float64))
    return layer


def run_case(name, begin, end, sync, seed=1000):
    """Two training calls and an evaluation call on samples [begin, end) of the global batch."""
    _, shape, _, dtype, channels_last, _ = CASES[name]
    layer = make_layer(name, sync)
    torch.manual_seed(seed)  # the noise keys over ranks: rank 0's draws
    result = {}
    for call in (1, 2):
        x = skewed(shape, 10 * call, dtype)[begin:end]
        if channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        x.requires_grad_(True)
        layer.weight.grad = layer.bias.grad = None
        y = layer(x)
        y.backward(skewed(shape, 10 * call + 1, dtype)[begin:end] - 1)
        result.update({f"output{call}": y.detach(), f"grad_input{call}": x.grad,
                       f"grad_weight{call}": layer.weight.grad, f"grad_bias{call}": layer.bias.grad})
    result.update({k: v.clone() for k, v in layer.named_buffers()})
    layer.eval()
    with torch.no_grad():
        result["eval_output"] = layer(skewed(shape, 30, dtype)[begin:end])
    return result


def make_model():
    """A small CNN with both batch forms, in double."""
    torch.manual_seed(5)
    return nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nt.BatchNormalNorm2d(4), nn.ReLU(), nn.Flatten(),
                         nn.Linear(4 * 4 * 4, 6), nt.BatchNormalNorm1d(6), nn.Tanh(), nn.Linear(6, 2)).double()


DDP_SPLIT = (5, 3)
DDP_STEPS = 2


def ddp_batch(step):
    n = sum(DDP_SPLIT)
    return skewed((n, 3, 4, 4), 100 + step, torch.float64), skewed((n, 2), 200 + step, torch.float64)


def train_steps(model, optimizer, begin, end, scale):
    """DDP_STEPS SGD steps on samples [begin, end) with loss scale * sum of squared errors."""
    losses = []
    for step in range(DDP_STEPS):
        x, target = ddp_batch(step)
        torch.manual_seed(300 + step)
        optimizer.zero_grad()
        loss = scale * ((model(x[begin:end]) - target[begin:end]) ** 2).sum()
        loss.backward()
        optimizer.step()
        losses.append(loss.detach())
    return losses


def worker(rank, port, out_dir):
    faulthandler.dump_traceback_later(DEADLINE - 30, exit=True)  # a hang prints where each rank waits
    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=WORLD,
                            timeout=datetime.timedelta(seconds=60))
    results = {}
    for name, case in CASES.items():
        split = case[2]
        begin = sum(split[:rank])
        # Rank 1's generator is seeded differently: every rank uses rank 0's noise key.
        results[name] = run_case(name, begin, begin + split[rank], sync=True, seed=1000 + 7 * rank)

    # DistributedDataParallel: each rank's loss is the sum over its own samples; DDP
    # averages the gradients over the ranks.
    model = nt.convert_sync(make_model())
    ddp = nn.parallel.DistributedDataParallel(model)
    optimizer = torch.optim.SGD(ddp.parameters(), lr=0.05)
    begin = sum(DDP_SPLIT[:rank])
    results["ddp_losses"] = train_steps(ddp, optimizer, begin, begin + DDP_SPLIT[rank], 1.0)
    results["ddp_state"] = {k: v.clone() for k, v in model.state_dict().items()}

    # Options that differ between the ranks (here noise on rank 0 only): refused on every
    # rank by normnorm's handshake, after which the ranks are still in step.
    layer = nt.SyncBatchNormalNorm1d(3, dtype=torch.float64, noise_train=0.4 if rank == 0 else 0.0)
    try:
        layer(torch.randn(4, 3, dtype=torch.float64))
        results["mismatch_error"] = ""
    except RuntimeError as error:
        results["mismatch_error"] = str(error)

    # Arguments that one rank's adapter refuses (rank 1: a float32 input to a float64 layer):
    # the refusal is shared before normnorm's handshake, so every rank raises and none waits.
    layer = nt.SyncBatchNormalNorm1d(3, dtype=torch.float64)
    try:
        layer(torch.randn(4, 3, dtype=torch.float64 if rank == 0 else torch.float32))
        results["refusal_error"] = ""
    except RuntimeError as error:
        results["refusal_error"] = str(error)

    # Evaluation with running statistics on rank 0 alone: if it made a collective, it
    # would pair with the all_gather below and fail (or time out) instead of passing.
    if rank == 0:
        model.eval()
        with torch.no_grad():
            model(ddp_batch(0)[0])
    marks = [torch.zeros(1) for _ in range(WORLD)]
    dist.all_gather(marks, torch.full((1,), float(rank + 1)))
    results["marks"] = torch.cat(marks)
    torch.save(results, os.path.join(out_dir, f"rank{rank}.pt"))
    # DDP first, while the default group still holds the process group: PyTorch 1.13's DDP
    # reducer destroys a group it holds last with the GIL held, and ProcessGroupGloo's
    # destructor then joins a worker thread that may need the GIL to free a tensor (a
    # deadlock at exit, seen once in 26 runs when DDP outlived destroy_process_group).
    del ddp, optimizer, model
    gc.collect()
    dist.destroy_process_group()
    faulthandler.cancel_dump_traceback_later()


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def relative_error(a, b):
    if b.numel() == 0:
        return 0.0
    scale = b.abs().max().item()
    diff = (a.double() - b.double()).abs().max().item()
    return diff / scale if scale > 0 else diff


class SyncTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        try:
            from normnorm_torch import _process_group  # noqa: F401
        except ImportError:  # configure said: "torch process groups (SyncBatchNormalNorm) skipped"
            raise unittest.SkipTest("normnorm_torch._process_group was not built")
        torch.set_num_threads(1)
        with tempfile.TemporaryDirectory() as out_dir:
            context = mp.spawn(worker, args=(free_port(), out_dir), nprocs=WORLD, join=False)
            deadline = time.monotonic() + DEADLINE
            while not context.join(timeout=1):  # raises when a rank fails
                if time.monotonic() > deadline:
                    for process in context.processes:
                        process.terminate()
                    raise RuntimeError(f"the {WORLD} ranks did not finish in {DEADLINE} s")
            cls.ranks = [torch.load(os.path.join(out_dir, f"rank{r}.pt")) for r in range(WORLD)]

    def assert_close(self, got, want, tolerance, label):
        error = relative_error(got, want)
        self.assertLessEqual(error, tolerance, f"{label}: relative error {error:.3g}")
        return error

    def test_cases_match_one_process(self):
        measured = {}
        for name, (_, shape, split, dtype, _, kwargs) in CASES.items():
            with self.subTest(case=name):
                want = run_case(name, 0, shape[0], sync=False)
                tolerance = TOLERANCE[dtype]
                worst = {}

                def note(kind, error):
                    worst[kind] = max(worst.get(kind, 0.0), error)

                for rank, results in enumerate(self.ranks):
                    got = results[name]
                    begin, end = sum(split[:rank]), sum(split[:rank + 1])
                    for key in ("output1", "grad_input1", "output2", "grad_input2", "eval_output"):
                        kind = "eval" if key == "eval_output" else key.rstrip("12")
                        self.assertEqual(got[key].shape, want[key][begin:end].shape, f"{name} rank {rank} {key}")
                        note(kind, self.assert_close(got[key], want[key][begin:end], tolerance,
                                                     f"{name} rank {rank} {key}"))
                    for key in ("running_mean", "running_var", "running_lmbda", "running_norm"):
                        note("running", self.assert_close(got[key], want[key], tolerance, f"{name} rank {rank} {key}"))
                        self.assertTrue(torch.equal(got[key], self.ranks[0][name][key]),
                                        f"{name}: {key} differs between rank 0 and rank {rank}")
                    self.assertEqual(got["num_batches_tracked"].item(), want["num_batches_tracked"].item())
                for key in ("grad_weight1", "grad_bias1", "grad_weight2", "grad_bias2"):
                    summed = sum(results[name][key] for results in self.ranks)
                    note("grad_affine", self.assert_close(summed, want[key], tolerance, f"{name} {key} summed"))
                measured[name] = worst
        print("\nlargest relative error over the ranks, per case:")
        for name, worst in measured.items():
            print(f"  {name:30s} " + "  ".join(f"{k} {v:.2g}" for k, v in worst.items()))

    def test_ddp_step_matches_one_process(self):
        # DDP averages the ranks' gradients: the one-process loss is the ranks' losses'
        # mean, 1/WORLD times the sum over the whole batch.
        model = make_model()
        optimizer = torch.optim.SGD(model.parameters(), lr=0.05)
        losses = train_steps(model, optimizer, 0, sum(DDP_SPLIT), 1.0 / WORLD)
        want = model.state_dict()
        worst = 0.0
        for rank, results in enumerate(self.ranks):
            for key, value in want.items():
                got = results["ddp_state"][key]
                if key.endswith("num_batches_tracked"):
                    self.assertEqual(got.item(), value.item(), key)
                    continue
                worst = max(worst, self.assert_close(got, value, 1e-12, f"rank {rank} {key} after {DDP_STEPS} steps"))
                self.assertTrue(torch.equal(got, self.ranks[0]["ddp_state"][key]), f"{key} differs between ranks")
        for step in range(DDP_STEPS):
            summed = sum(results["ddp_losses"][step] for results in self.ranks) / WORLD
            self.assert_close(summed, losses[step], 1e-12, f"loss of step {step}")
        print(f"\nDDP, {DDP_STEPS} SGD steps: largest relative error of a parameter or buffer {worst:.2g}")

    def test_options_differing_between_ranks_are_refused_on_every_rank(self):
        for rank, results in enumerate(self.ranks):
            self.assertIn("differs from rank 0", results["mismatch_error"], f"rank {rank}")

    def test_a_rank_refusing_its_arguments_makes_every_rank_raise(self):
        self.assertIn("rank 1 refused its arguments", self.ranks[0]["refusal_error"])
        self.assertIn("weight has dtype Double but the input has Float", self.ranks[1]["refusal_error"])

    def test_evaluation_makes_no_collective(self):
        for results in self.ranks:
            self.assertEqual(results["marks"].tolist(), [1.0, 2.0])

    def test_training_without_a_process_group_is_refused(self):
        layer = nt.SyncBatchNormalNorm1d(3, dtype=torch.float64)
        with self.assertRaisesRegex(RuntimeError, "torch.distributed is not initialized"):
            layer(torch.randn(4, 3, dtype=torch.float64))
        layer.eval()  # evaluation with running statistics needs no group
        self.assertEqual(layer(torch.randn(4, 3, dtype=torch.float64)).shape, (4, 3))


if __name__ == "__main__":
    unittest.main()
