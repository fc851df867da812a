#!/usr/bin/env python3
"""Training-step time of the experiment's network per norm layer, interleaved.

Arms: batchnorm (torch.nn.BatchNorm2d), normality (normnorm_torch.BatchNormalNorm2d,
noise 0.4), eager (the paper's layer in eager PyTorch, integrations/torch/tests/
paper_layers.py, noise 0.4): the end-to-end cost of Gaussianizing with and without
normnorm's kernels. Each round runs --steps training steps (forward, backward, SGD update
on batches of 128 from the training set) of every arm in turn, so load from other
processes on a shared machine hits the arms alike; the per-arm figure is the median over
rounds of the mean step time of a round, and an epoch's time is that times the
protocol's steps per epoch.

  PYTHONPATH=build/python /usr/bin/python3 experiments/cnn_fashion_mnist/time_steps.py --out timing.json
"""

import argparse
import json
import os
import statistics
import sys
import time

import torch
import torch.nn.functional as F

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import data  # noqa: E402
import model as models  # noqa: E402
import train  # noqa: E402


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--arms", default="batchnorm,normality,eager")
    parser.add_argument("--rounds", type=int, default=8)
    parser.add_argument("--steps", type=int, default=25, help="steps per arm per round")
    parser.add_argument("--width", type=int, default=8)
    parser.add_argument("--blocks", type=int, default=2)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--train-subset", type=int, default=20000, help="sets the steps per epoch")
    parser.add_argument("--out", default="")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    train_x, train_y, _, _ = data.load(train_subset=args.train_subset)
    steps_per_epoch = len(train_y) // train.BATCH
    arms = args.arms.split(",")
    nets = {arm: models.build(arm, 0, args.width, args.blocks).train() for arm in arms}
    optimizers = {arm: torch.optim.SGD(net.parameters(), lr=train.BASE_LR, momentum=train.MOMENTUM,
                                       weight_decay=train.WEIGHT_DECAY) for arm, net in nets.items()}
    order = torch.Generator().manual_seed(0)
    samples = {arm: [] for arm in arms}
    for r in range(args.rounds + 1):  # round 0 warms up (allocator, thread pools) and is dropped
        for arm in arms:
            net, optimizer = nets[arm], optimizers[arm]
            started = time.perf_counter()
            for _ in range(args.steps):
                index = torch.randint(len(train_y), (train.BATCH,), generator=order)
                loss = F.cross_entropy(net(train_x[index]), train_y[index])
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
            if r > 0:
                samples[arm].append((time.perf_counter() - started) / args.steps)
        if r > 0:
            print(f"round {r}: " + ", ".join(f"{arm} {1000 * samples[arm][-1]:.0f} ms/step" for arm in arms),
                  flush=True)
    base = statistics.median(samples[arms[0]])
    summary = {}
    for arm in arms:
        median = statistics.median(samples[arm])
        summary[arm] = {"ms_per_step": 1000 * median, "seconds_per_epoch": median * steps_per_epoch,
                        "ratio_to_first": median / base, "round_ms": [1000 * s for s in samples[arm]]}
        print(f"{arm}: {1000 * median:.1f} ms/step, {median * steps_per_epoch:.1f} s per epoch of "
              f"{steps_per_epoch} steps, {median / base:.2f}x {arms[0]}")
    if args.out:
        with open(args.out, "w") as f:
            json.dump({"config": vars(args), "steps_per_epoch": steps_per_epoch, "arms": summary,
                       "utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}, f, indent=1)


if __name__ == "__main__":
    main()
