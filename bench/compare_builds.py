#!/usr/bin/env python3
"""Two builds of normnorm_bench, row by row: medians and the ratio b / a.

Used for runtime SIMD dispatch: a = normnorm_bench (-march=native), b =
normnorm_bench_dispatch (baseline x86-64 flags + normnorm_add_simd_dispatch).
The binaries run alternately (`--rounds` times each, every run with Google
Benchmark's `--benchmark_repetitions`), and each row's figure is the median of
all the per-run medians, so slow drifts of a shared machine hit both alike.

  /usr/bin/python3 bench/compare_builds.py \\
      --a build-bench/bench/normnorm_bench --b build-bench/bench/normnorm_bench_dispatch \\
      --filter '^normnorm/.*/float/threads:1/'
"""
import argparse
import json
import statistics
import subprocess
import sys
import tempfile


def run(binary, row_filter, repetitions):
    with tempfile.NamedTemporaryFile(suffix=".json") as out:
        subprocess.run([binary, "--benchmark_filter=" + row_filter, "--benchmark_repetitions={}".format(repetitions),
                        "--benchmark_report_aggregates_only=true", "--benchmark_out=" + out.name,
                        "--benchmark_out_format=json"], check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        data = json.load(open(out.name))
    medians = {r["run_name"]: r["real_time"] for r in data["benchmarks"] if r.get("aggregate_name") == "median"}
    return medians, data["context"].get("normnorm_simd_arch", "?")


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--a", required=True, help="the reference normnorm_bench binary")
    p.add_argument("--b", required=True, help="the binary compared with it")
    p.add_argument("--filter", default="^normnorm/.*/float/threads:1/", help="Google Benchmark row regex")
    p.add_argument("--rounds", type=int, default=2, help="alternating runs of each binary (default 2)")
    p.add_argument("--repetitions", type=int, default=3, help="--benchmark_repetitions per run (default 3)")
    args = p.parse_args()

    times = {"a": {}, "b": {}}
    arch = {}
    for _ in range(args.rounds):
        for key in ("a", "b"):
            medians, arch[key] = run(getattr(args, key), args.filter, args.repetitions)
            for name, value in medians.items():
                times[key].setdefault(name, []).append(value)
    print("a = {} (runs {}), b = {} (runs {}); medians of {} runs x {} repetitions, ms".format(
        args.a, arch["a"], args.b, arch["b"], args.rounds, args.repetitions))
    print()
    print("| row | a ms | b ms | b / a |")
    print("|---|---:|---:|---:|")
    for name in times["a"]:
        if name not in times["b"]:
            continue
        a, b = statistics.median(times["a"][name]), statistics.median(times["b"][name])
        row = name.replace("normnorm/", "", 1).replace("/real_time", "")
        print("| {} | {:.3f} | {:.3f} | {:.2f}x |".format(row, a, b, b / a))
    return 0


if __name__ == "__main__":
    sys.exit(main())
