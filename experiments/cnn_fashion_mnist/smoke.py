#!/usr/bin/env python3
"""Smoke test of the CNN experiment (ctest torch.cnn_experiment_smoke): every arm for a
few steps of a tiny network on a small subset, then checks that could fail:

  - every arm ran its steps and its losses, test loss and accuracy are finite and sane;
  - convert (the paper's layers through normnorm_torch.convert) matches normality step
    for step, bitwise: same initialization, data order and noise draws;
  - the arms of a seed start from the same weights (batchnorm and transform differ only in
    the norm layer, so their first losses differ, but rebuilding an arm repeats it exactly);
  - the Q-Q R^2 is in [0, 1] for every layer, near 1 for a normal sample and clearly
    below 1 for a skewed one.

Exits 77 (ctest: skipped) when Debian's dataset-fashion-mnist is not installed.
"""

import math
import os
import sys

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import torch  # noqa: E402

import data  # noqa: E402
import model as models  # noqa: E402
import qq  # noqa: E402
import train  # noqa: E402

STEPS = 3


def check(condition, message):
    if not condition:
        print("FAIL:", message, flush=True)
        sys.exit(1)


def main():
    if not data.available():
        print(f"skipped: no Fashion-MNIST in {data.DATA_DIR} (Debian: dataset-fashion-mnist)")
        sys.exit(77)

    generator = torch.Generator().manual_seed(0)
    normal = qq.qq_r2(torch.randn(20000, generator=generator))
    skewed = qq.qq_r2(torch.empty(20000).exponential_(generator=generator))
    check(0.999 < normal <= 1.0, f"R^2 of a normal sample {normal}")
    check(0.0 <= skewed < 0.95, f"R^2 of an exponential sample {skewed}")
    check(qq.qq_r2(torch.ones(100)) == 0.0, "R^2 of a constant sample")

    a = models.build("transform", 3, 4, 1).state_dict()
    b = models.build("transform", 3, 4, 1).state_dict()
    check(all(torch.equal(a[k], b[k]) for k in a), "rebuilding an arm with its seed gives other weights")
    bn = models.build("batchnorm", 3, 4, 1).state_dict()
    check(torch.equal(bn["stem.weight"], a["stem.weight"]) and torch.equal(bn["fc.weight"], a["fc.weight"]),
          "batchnorm and transform arms of a seed start from different weights")

    results = train.main(["--arms", ",".join(models.ARMS), "--seeds", "0", "--epochs", "1",
                          "--train-subset", "1024", "--test-subset", "1000", "--r2-batches", "2", "--width", "4", "--blocks", "1", "--threads", "1",
                          "--max-steps", str(STEPS)])
    runs = {r["arm"]: r for r in results["runs"]}
    check(set(runs) == set(models.ARMS), f"arms run: {sorted(runs)}")
    for arm, r in runs.items():
        check(len(r["step_losses"]) == STEPS, f"{arm}: {len(r['step_losses'])} steps instead of {STEPS}")
        check(all(math.isfinite(v) and 0 < v < 10 for v in r["step_losses"]), f"{arm}: losses {r['step_losses']}")
        check(math.isfinite(r["final_test_loss"]) and 0.0 <= r["final_test_acc"] <= 1.0,
              f"{arm}: test loss {r['final_test_loss']}, accuracy {r['final_test_acc']}")
        check(len(r["r2"]) == 9, f"{arm}: R^2 for {len(r['r2'])} layers instead of 9")
        check(all(0.0 <= v <= 1.0 for v in r["r2"].values()), f"{arm}: R^2 {r['r2']}")
    check(runs["convert"]["step_losses"] == runs["normality"]["step_losses"],
          f"convert {runs['convert']['step_losses']} != normality {runs['normality']['step_losses']}")
    check(runs["convert"]["r2"] == runs["normality"]["r2"], "convert and normality R^2 differ")
    check(runs["transform"]["step_losses"][0] != runs["batchnorm"]["step_losses"][0],
          "the transform arm's first loss equals BatchNorm2d's: is the layer swapped in?")
    print("ok:", {arm: [round(v, 4) for v in r["step_losses"]] for arm, r in runs.items()})


if __name__ == "__main__":
    main()
