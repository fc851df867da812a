#!/usr/bin/env python3
"""Mean +- standard error over seeds, and paired differences, from the demo's reports.

    python3 examples/fashion_mnist/compare_seeds.py REPORT_DIR [REPORT_DIR ...]

Each REPORT_DIR is the --out folder of one run (one seed); every run must have the same
arms and epochs. For each arm: final test accuracy, best epoch's test accuracy, final test
loss and final training loss, as mean +- standard error over the runs (standard deviation
over sqrt(n)). For each pair of arms, earlier minus later in the runs' order (with the arms
normality,transform,batch: the noise's share, normality - transform; the whole effect,
normality - batch; the transform's share, transform - batch): the paired difference per
seed (the same seed gives every arm the same initial weights and data order), its
mean +- standard error, and t = mean / standard error with n - 1 degrees of freedom. A difference whose |t| is below the two-sided 5% critical value
is reported as within noise. Only the standard library: Debian's python3 runs it.
"""

import csv
import math
import statistics
import sys

# Two-sided 5% critical values of Student's t, by degrees of freedom.
T_CRITICAL_95 = {1: 12.706, 2: 4.303, 3: 3.182, 4: 2.776, 5: 2.571, 6: 2.447, 7: 2.365, 8: 2.306, 9: 2.262,
                 10: 2.228, 15: 2.131, 20: 2.086, 30: 2.042}


def t_critical(df):
    usable = [d for d in T_CRITICAL_95 if d <= df]
    return T_CRITICAL_95[max(usable)]  # a lower df's value: conservative between table rows


def read_run(folder):
    with open(f"{folder}/accuracy.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    if not rows:
        sys.exit(f"{folder}/accuracy.csv has no epochs")
    arms = [c[: -len("_test_accuracy")] for c in rows[0] if c.endswith("_test_accuracy")]
    measures = {}
    for arm in arms:
        accuracy = [float(r[f"{arm}_test_accuracy"]) for r in rows]
        measures[arm] = {
            "final test accuracy (%)": accuracy[-1],
            "best epoch's test accuracy (%)": max(accuracy),
            "final test loss": float(rows[-1][f"{arm}_test_loss"]),
            "final epoch's training loss": float(rows[-1][f"{arm}_train_loss"]),
        }
    return arms, len(rows), measures


def mean_se(values):
    mean = statistics.fmean(values)
    se = statistics.stdev(values) / math.sqrt(len(values)) if len(values) > 1 else float("nan")
    return mean, se


def main(folders):
    if len(folders) < 2:
        sys.exit(__doc__)
    runs = [read_run(folder) for folder in folders]
    arms, epochs = runs[0][0], runs[0][1]
    for folder, (other_arms, other_epochs, _) in zip(folders, runs):
        if other_arms != arms or other_epochs != epochs:
            sys.exit(f"{folder}: arms {other_arms} x {other_epochs} epochs, but {folders[0]}: {arms} x {epochs}")
    n = len(runs)
    measure_names = list(runs[0][2][arms[0]])
    print(f"{n} runs x {epochs} epochs; mean +- standard error over the runs")
    width = max(len(m) for m in measure_names)
    print(f"{'':{width}}  " + "  ".join(f"{arm:>22}" for arm in arms))
    for measure in measure_names:
        cells = []
        for arm in arms:
            mean, se = mean_se([run[2][arm][measure] for run in runs])
            cells.append(f"{mean:>12.4f} +- {se:<6.4f}")
        print(f"{measure:{width}}  " + "  ".join(cells))
    print()
    print(f"paired differences (per run, then mean +- standard error, t with {n - 1} df;"
          f" |t| < {t_critical(n - 1)} is within noise at the 5% level)")
    for i, first in enumerate(arms):
        for second in arms[i + 1:]:
            for measure in measure_names:
                differences = [run[2][first][measure] - run[2][second][measure] for run in runs]
                mean, se = mean_se(differences)
                t = mean / se if se > 0 else float("nan")
                verdict = "within noise" if abs(t) < t_critical(n - 1) else "outside noise"
                per_run = ", ".join(f"{d:+.4f}" for d in differences)
                print(f"  {first} - {second}, {measure}: [{per_run}] -> {mean:+.4f} +- {se:.4f}, t = {t:+.2f}, "
                      f"{verdict}")


if __name__ == "__main__":
    main(sys.argv[1:])
