"""Whether `mnsize bench` repeats: the same configuration in separate
processes, as a user runs it twice, and how far apart the processes' latency
(p10) and median are.

For each runtime, five `mnsize bench --runtime R -f json` processes per
configuration, in interleaved turns (so that the machine's drift hits every
configuration alike); prints each process's latency and median and, for
each, how far apart the processes are: (largest - smallest) / smallest.
The configurations are one of each MobileNet family, from the validation set
of latency_accuracy.py, outside the calibration grid.

    python benchmarks/bench_repeat.py [--runtimes torch,onnxruntime,openvino] [--processes 5]
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
from datetime import date

from latency_accuracy import options, run_json
from timing import MNSIZE

CONFIGS = (("mobilenet_v1", "0.85", 232), ("mobilenet_v2", "0.55", 136), ("mobilenet_v3_large", "1.3", 120),
           ("mobilenet_v3_small", "0.85", 232))


def apart(values: list[float]) -> float:
    return (max(values) - min(values)) / min(values)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runtimes", default="torch,onnxruntime,openvino")
    parser.add_argument("--processes", type=int, default=5)
    args = parser.parse_args()
    print(f"{date.today()} · {platform.machine()} · {os.cpu_count()} cores · 1 thread · "
          f"{args.processes} processes per configuration\n")
    print("| configuration | runtime | latency (p10) of each process, ms | apart | median of each, ms | apart |")
    print("|---|---|---|---:|---|---:|")
    summary = {}
    for runtime in args.runtimes.split(","):
        runs: dict = {config: [] for config in CONFIGS}
        for _ in range(args.processes):
            for config in CONFIGS:
                runs[config].append(run_json([MNSIZE, "bench", "--runtime", runtime, *options(config), "-f", "json"]))
        version = runs[CONFIGS[0]][0]["runtime_version"]
        for (model, alpha, res), done in runs.items():
            p10 = [d["latency_ms"] for d in done]
            median = [d["median_ms"] for d in done]
            summary.setdefault(runtime, []).append((apart(p10), apart(median)))
            print(f"| {model} α {alpha}, {res}×{res} | {version} | {', '.join(f'{v:.3f}' for v in p10)} | "
                  f"{100 * apart(p10):.1f}% | {', '.join(f'{v:.3f}' for v in median)} | "
                  f"{100 * apart(median):.1f}% |")
    print("\n| runtime | latency (p10) apart: median over configurations | largest | median apart: median | largest |")
    print("|---|---:|---:|---:|---:|")
    for runtime, pairs in summary.items():
        p10, median = [p for p, _ in pairs], [m for _, m in pairs]
        print(f"| {runtime} | {100 * statistics.median(p10):.1f}% | {100 * max(p10):.1f}% | "
              f"{100 * statistics.median(median):.1f}% | {100 * max(median):.1f}% |")


if __name__ == "__main__":
    main()
