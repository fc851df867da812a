#!/usr/bin/env python3
"""Tables (markdown) and the per-layer R^2 figure from train.py's and time_steps.py's JSON.

  /usr/bin/python3 experiments/cnn_fashion_mnist/report.py results/seeds01.json results/seed2.json \
      results/convert0.json --timing results/timing.json --figure results/qq_r2.png

Means are over seeds, with the standard error (sample standard deviation / sqrt(n)). A
paired difference is arm minus batchnorm per seed; t is its mean over its standard error
(n - 1 degrees of freedom). The figure needs gnuplot (Debian: gnuplot-nox); without it the
R^2 table is all there is.
"""

import argparse
import json
import math
import os
import shutil
import statistics
import subprocess
import tempfile

ORDER = ("batchnorm", "transform", "normality", "convert", "eager")
METRICS = (("final_test_acc", "final test acc (%)", 100.0), ("best_test_acc", "best test acc (%)", 100.0),
           ("final_test_loss", "final test loss", 1.0), ("best_test_loss", "best test loss", 1.0))


def mean_se(values):
    m = statistics.fmean(values)
    se = statistics.stdev(values) / math.sqrt(len(values)) if len(values) > 1 else float("nan")
    return m, se


def fmt(values, scale=1.0, digits=2):
    m, se = mean_se([scale * v for v in values])
    return f"{m:.{digits}f}" if math.isnan(se) else f"{m:.{digits}f} ± {se:.{digits}f}"


def load_runs(paths):
    runs, configs = [], []
    for path in paths:
        with open(path) as f:
            result = json.load(f)
        configs.append(result["config"])
        runs.extend(result["runs"])
    return runs, configs


def by_arm(runs):
    arms = {}
    for r in runs:
        arms.setdefault(r["arm"], {})[r["seed"]] = r
    return {arm: arms[arm] for arm in ORDER if arm in arms}


def accuracy_table(arms):
    lines = ["| arm | seeds | " + " | ".join(label for _, label, _ in METRICS) + " |",
             "|---|---|" + "---|" * len(METRICS)]
    for arm, seeds in arms.items():
        cells = [fmt([r[key] for r in seeds.values()], scale, 2 if scale != 1.0 else 4) for key, _, scale in METRICS]
        lines.append(f"| {arm} | {','.join(map(str, sorted(seeds)))} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def paired_table(arms, reference="batchnorm"):
    if reference not in arms:
        return "(no batchnorm runs)"
    lines = ["| arm - " + reference + " | pairs | " + " | ".join(label for _, label, _ in METRICS) + " |",
             "|---|---|" + "---|" * len(METRICS)]
    for arm, seeds in arms.items():
        if arm == reference:
            continue
        common = sorted(set(seeds) & set(arms[reference]))
        if not common:
            continue
        cells = []
        for key, _, scale in METRICS:
            diffs = [scale * (seeds[s][key] - arms[reference][s][key]) for s in common]
            m, se = mean_se(diffs)
            digits = 2 if scale != 1.0 else 4
            if len(diffs) < 2:
                cells.append(f"{m:+.{digits}f}")
            elif se == 0:
                cells.append(f"{m:+.{digits}f} (all pairs equal)")
            else:
                cells.append(f"{m:+.{digits}f} ± {se:.{digits}f}, t = {m / se:+.2f}")
        lines.append(f"| {arm} | {len(common)} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def r2_table(arms):
    names = list(next(iter(arms.values()))[min(next(iter(arms.values())))]["r2"])
    lines = ["| layer | " + " | ".join(arms) + " |", "|---|" + "---|" * len(arms)]
    for i, name in enumerate(names):
        cells = [fmt([r["r2"][name] for r in seeds.values()], 1.0, 4) for seeds in arms.values()]
        lines.append(f"| {i + 1} `{name}` | " + " | ".join(cells) + " |")
    cells = [fmt([statistics.fmean(r["r2"].values()) for r in seeds.values()], 1.0, 4) for seeds in arms.values()]
    lines.append("| mean over layers | " + " | ".join(cells) + " |")
    return "\n".join(lines), names


def time_table(arms, timing):
    lines = ["| arm | training s/epoch (median over epochs and seeds) | ms/step | x batchnorm |", "|---|---|---|---|"]
    medians = {}
    for arm, seeds in arms.items():
        seconds = [e["train_seconds"] for r in seeds.values() for e in r["epochs"]]
        steps = [e["steps"] for r in seeds.values() for e in r["epochs"]]
        medians[arm] = statistics.median(seconds), statistics.median(steps)
    base = medians.get("batchnorm", (float("nan"), 1))[0]
    for arm, (sec, steps) in medians.items():
        lines.append(f"| {arm} | {sec:.1f} | {1000 * sec / steps:.0f} | {sec / base:.2f} |")
    text = "\n".join(lines)
    if timing:
        first = next(iter(timing["arms"]))
        rows = ["| arm | ms/step (median of rounds) | s per epoch of "
                f"{timing['steps_per_epoch']} steps | x {first} |", "|---|---|---|---|"]
        for arm, t in timing["arms"].items():
            rows.append(f"| {arm} | {t['ms_per_step']:.0f} | {t['seconds_per_epoch']:.1f} | {t['ratio_to_first']:.2f} |")
        text += "\n\nInterleaved timing (time_steps.py, " + \
            f"{timing['config']['rounds']} rounds x {timing['config']['steps']} steps per arm, {timing['utc']}):\n\n" + \
            "\n".join(rows)
    return text


def figure(arms, names, path):
    """Mean R^2 per layer with standard-error bars, one line per arm (gnuplot, PNG)."""
    gnuplot = shutil.which("gnuplot")
    if not gnuplot:
        return "gnuplot not found: no figure (the table above has the same numbers)"
    with tempfile.TemporaryDirectory() as tmp:
        plots = []
        for k, (arm, seeds) in enumerate(arms.items()):
            data = os.path.join(tmp, f"{arm}.dat")
            with open(data, "w") as f:
                for i, name in enumerate(names):
                    m, se = mean_se([r["r2"][name] for r in seeds.values()])
                    offset = 0.08 * (k - (len(arms) - 1) / 2)  # side by side, bars readable
                    f.write(f"{i + 1 + offset} {m} {0.0 if math.isnan(se) else se}\n")
            plots.append(f"'{data}' using 1:2:3 with yerrorlines title '{arm} (n={len(seeds)})'")
        labels = ", ".join(f'"{i + 1}" {i + 1}' for i in range(len(names)))
        script = (f"set terminal pngcairo size 900,500 font 'DejaVu Sans,11'\nset output '{path}'\n"
                  "set title 'Normal Q-Q R^2 of the pre-affine values per norm layer (test set, end of training)'\n"
                  "set xlabel 'norm layer (forward order)'\nset ylabel 'mean R^2 (20 channels x 10 batches)'\n"
                  f"set xtics ({labels})\nset key bottom right\nset grid ytics\n"
                  f"set xrange [0.5:{len(names) + 0.5}]\n"
                  "plot " + ", ".join(plots) + "\n")
        subprocess.run([gnuplot], input=script, text=True, check=True)
    return f"figure: {path}"


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("results", nargs="+", help="train.py --out files")
    parser.add_argument("--timing", default="", help="time_steps.py --out file")
    parser.add_argument("--figure", default="", help="PNG path for the R^2 figure")
    args = parser.parse_args()
    runs, configs = load_runs(args.results)
    arms = by_arm(runs)
    timing = None
    if args.timing:
        with open(args.timing) as f:
            timing = json.load(f)
    print("## Test accuracy and loss (mean ± standard error over seeds)\n")
    print(accuracy_table(arms))
    print("\n## Paired differences against batchnorm (mean ± standard error, t)\n")
    print(paired_table(arms))
    if "convert" in arms and "normality" in arms:
        print("\n## convert against normality, same seeds\n")
        print(paired_table({k: arms[k] for k in ("normality", "convert")}, "normality"))
        for seed in sorted(set(arms["convert"]) & set(arms["normality"])):
            a, b = arms["convert"][seed], arms["normality"][seed]
            same = a["step_losses"] == b["step_losses"]
            print(f"\nseed {seed}: the {len(a['step_losses'])} training losses of convert and normality are "
                  + ("bitwise identical" if same else "NOT identical")
                  + "; per-layer R^2 " + ("identical" if a["r2"] == b["r2"] else "different"))
    table, names = r2_table(arms)
    print("\n## Q-Q R^2 per norm layer (mean ± standard error over seeds)\n")
    print(table)
    if args.figure:
        print("\n" + figure(arms, names, args.figure))
    print("\n## Training time\n")
    print(time_table(arms, timing))


if __name__ == "__main__":
    main()
