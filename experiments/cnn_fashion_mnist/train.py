#!/usr/bin/env python3
"""A small ResNet on Fashion-MNIST with BatchNorm2d against normnorm's BatchNormalNorm2d.

Arms (every norm layer of the network, the shortcuts' included, is the arm's):
  batchnorm  torch.nn.BatchNorm2d
  transform  normnorm_torch.BatchNormalNorm2d, noise_train=0 (the power transform alone)
  normality  normnorm_torch.BatchNormalNorm2d, noise_train=0.4 (the spec's default)
  convert    built with the paper's layer (the eager BatchNormalNorm2d of
             integrations/torch/tests/paper_layers.py, noise 0.4), then
             normnorm_torch.convert(model): the drop-in path; same numbers as normality
  eager      the paper's layer itself, not converted (slow; meant for timing with --max-steps)

Paired seeds: for a seed, every arm starts from the same convolution and linear weights
and sees the same training batches in the same order (a generator of its own, so the
noise draws from torch's default generator do not move the data order). normality and
convert also draw the same noise, so they should match step for step.

Protocol: SGD lr 0.1, momentum 0.9, weight decay 5e-4, batch 128 (the last partial batch
of an epoch dropped: a batch of one has no batch statistics), lr x0.1 after 50% and 75% of
the steps, no augmentation. After each epoch: test loss and accuracy on the 10k test set.
At the end: per norm layer, the mean R^2 of the normal Q-Q plot of the pre-affine values
over 20 channels x the first 10 test batches of 128 (the paper's Gaussianity measure).

  PYTHONPATH=build/python /usr/bin/python3 experiments/cnn_fashion_mnist/train.py \
      --arms batchnorm,transform,normality --seeds 0,1,2 --out results.json

(the defaults are the protocol of docs/experiments.md: 6 epochs, a 20 000-image training
subset, width 8, two blocks per stage, 1 thread)
"""

import argparse
import json
import math
import os
import platform
import sys
import time

import torch
import torch.nn.functional as F

sys.dont_write_bytecode = True  # no __pycache__ next to paper_layers in the source tree
HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import data  # noqa: E402
import model as models  # noqa: E402
import qq  # noqa: E402

MOMENTUM, WEIGHT_DECAY, BATCH, BASE_LR = 0.9, 5e-4, 128, 0.1
EVAL_BATCH = 500
R2_BATCHES, R2_CHANNELS = 10, 20


def learning_rate(step: int, total_steps: int) -> float:
    """lr x0.1 once half of the steps are done, x0.01 after three quarters."""
    if step >= 0.75 * total_steps:
        return BASE_LR * 0.01
    if step >= 0.5 * total_steps:
        return BASE_LR * 0.1
    return BASE_LR


@torch.no_grad()
def evaluate(net, x, y):
    """(mean cross-entropy, accuracy) over the whole set, in evaluation mode."""
    net.eval()
    loss_sum, correct = 0.0, 0
    for start in range(0, len(y), EVAL_BATCH):
        logits = net(x[start:start + EVAL_BATCH])
        target = y[start:start + EVAL_BATCH]
        loss_sum += float(F.cross_entropy(logits, target, reduction="sum"))
        correct += int((logits.argmax(1) == target).sum())
    net.train()
    return loss_sum / len(y), correct / len(y)


def run(arm, seed, args, dataset, log):
    train_x, train_y, test_x, test_y = dataset
    net = models.build(arm, seed, args.width, args.blocks)
    net.train()
    optimizer = torch.optim.SGD(net.parameters(), lr=BASE_LR, momentum=MOMENTUM, weight_decay=WEIGHT_DECAY)
    steps_per_epoch = len(train_y) // BATCH
    total_steps = args.epochs * steps_per_epoch
    if args.max_steps:
        total_steps = min(total_steps, args.max_steps)
    order = torch.Generator().manual_seed(seed)  # the data order: the same for every arm
    torch.manual_seed(1_000_003 + seed)  # the noise stream: the same for normality and convert
    epochs, step_losses, step = [], [], 0
    while step < total_steps:
        permutation = torch.randperm(len(train_y), generator=order)
        started, loss_sum, seen = time.perf_counter(), 0.0, 0
        for b in range(steps_per_epoch):
            if step >= total_steps:
                break
            for group in optimizer.param_groups:
                group["lr"] = learning_rate(step, total_steps)
            index = permutation[b * BATCH:(b + 1) * BATCH]
            loss = F.cross_entropy(net(train_x[index]), train_y[index])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            value = float(loss)
            step_losses.append(value)
            loss_sum += value
            seen += 1
            step += 1
            if not math.isfinite(value):
                log(f"  {arm} seed {seed}: non-finite loss {value} at step {step}")
                break
        train_seconds = time.perf_counter() - started
        started = time.perf_counter()
        test_loss, test_acc = evaluate(net, test_x, test_y) if not args.no_eval else (float("nan"), float("nan"))
        epochs.append({"epoch": len(epochs) + 1, "steps": seen, "train_loss": loss_sum / max(seen, 1),
                       "test_loss": test_loss, "test_acc": test_acc, "train_seconds": train_seconds,
                       "eval_seconds": time.perf_counter() - started,
                       "lr_at_end": learning_rate(step - 1, total_steps)})
        log(f"  {arm} seed {seed} epoch {len(epochs)}: {seen} steps in {train_seconds:.1f} s "
            f"({1000 * train_seconds / max(seen, 1):.0f} ms/step), train loss {loss_sum / max(seen, 1):.4f}, "
            f"test loss {test_loss:.4f}, test acc {100 * test_acc:.2f}%")
        if step_losses and not math.isfinite(step_losses[-1]):
            break
    r2_batches = [test_x[i * BATCH:(i + 1) * BATCH] for i in range(args.r2_batches)]
    started = time.perf_counter()
    r2, counts = qq.layer_r2(net, models.norm_layers(net), r2_batches, R2_CHANNELS)
    log(f"  {arm} seed {seed}: R^2 per layer in {time.perf_counter() - started:.1f} s: "
        + ", ".join(f"{v:.4f}" for v in r2.values()))
    accs = [e["test_acc"] for e in epochs]
    losses = [e["test_loss"] for e in epochs]
    return {"arm": arm, "seed": seed, "steps": step, "steps_per_epoch": steps_per_epoch, "epochs": epochs,
            "final_test_acc": accs[-1], "best_test_acc": max(accs), "final_test_loss": losses[-1],
            "best_test_loss": min(losses), "step_losses": step_losses, "r2": r2, "r2_samples": counts}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--arms", default="batchnorm,transform,normality,convert",
                        help="comma-separated, of " + ", ".join(models.ARMS))
    parser.add_argument("--seeds", default="0", help="comma-separated integers")
    parser.add_argument("--epochs", type=int, default=6)
    parser.add_argument("--train-subset", type=int, default=20000, help="training images kept (0: all 60000)")
    parser.add_argument("--width", type=int, default=8, help="channels of the first stage (then x2, x4)")
    parser.add_argument("--blocks", type=int, default=2, help="basic blocks per stage")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--max-steps", type=int, default=0, help="stop each run after this many steps (0: no cap)")
    parser.add_argument("--no-eval", action="store_true", help="skip the per-epoch test evaluation (timing runs)")
    parser.add_argument("--test-subset", type=int, default=0,
                        help="evaluate on the first this many test images (0: all 10000; smoke test only)")
    parser.add_argument("--r2-batches", type=int, default=R2_BATCHES, help="test batches for the Q-Q R^2")
    parser.add_argument("--data-dir", default=data.DATA_DIR)
    parser.add_argument("--out", default="", help="JSON results, rewritten after every run")
    parser.add_argument("--quiet", action="store_true")
    args = parser.parse_args(argv)

    arms = [a for a in args.arms.split(",") if a]
    for arm in arms:
        if arm not in models.ARMS:
            parser.error(f"unknown arm {arm!r}")
    seeds = [int(s) for s in args.seeds.split(",") if s]
    torch.set_num_threads(args.threads)  # normnorm's kernels follow torch.get_num_threads() too

    def log(message):
        if not args.quiet:
            print(message, flush=True)

    started = time.perf_counter()
    dataset = data.load(args.data_dir, args.train_subset)
    if args.test_subset:
        dataset = (*dataset[:2], dataset[2][:args.test_subset], dataset[3][:args.test_subset])
    log(f"data: {len(dataset[1])} training, {len(dataset[3])} test images ({time.perf_counter() - started:.1f} s)")
    results = {"config": {k: v for k, v in vars(args).items() if k not in ("quiet",)},
               "protocol": {"batch": BATCH, "lr": BASE_LR, "momentum": MOMENTUM, "weight_decay": WEIGHT_DECAY,
                            "lr_steps": "x0.1 at 50% and 75% of the steps", "noise": models.NOISE,
                            "r2": f"{R2_CHANNELS} channels x {args.r2_batches} test batches of {BATCH}"},
               "host": {"torch": torch.__version__, "python": platform.python_version(),
                        "started_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())},
               "runs": []}
    # Seed-major order: the arms of a seed run back to back, so load changes on the shared
    # machine hit the arms of a pair at nearly the same time.
    for seed in seeds:
        for arm in arms:
            log(f"{arm} seed {seed}")
            results["runs"].append(run(arm, seed, args, dataset, log))
            if args.out:
                with open(args.out + ".tmp", "w") as f:
                    json.dump(results, f, indent=1)
                os.replace(args.out + ".tmp", args.out)
    return results


if __name__ == "__main__":
    main()
