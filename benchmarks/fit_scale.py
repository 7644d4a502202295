"""Wall time and peak memory of whole `mnsize fit` processes as the search grows.

10^4 to 10^6 candidates of mobilenet_v1, every one counted exactly. Target:
10^6 candidates in <= 2 s with peak memory <= 100 MiB, and memory flat
however many candidates (the search streams; it keeps only what it reports).

    python benchmarks/fit_scale.py [--runs 5]
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import subprocess
import time
from datetime import date

from timing import ENV, MNSIZE, compile_mnsize, quantile

FIT = [MNSIZE, "fit", "--max-madds", "150M"]
TARGET = "10^6 candidates, 1,000 α × 1,000 resolutions"
COMMANDS = {
    "10^4 candidates, 100 α × 100 resolutions": FIT + ["--alphas", "0.01:1:0.01", "--resolutions", "1:100:1"],
    "10^5 candidates, 100 α × 1,000 resolutions": FIT + ["--alphas", "0.01:1:0.01", "--resolutions", "1:1000:1"],
    TARGET: FIT + ["--alphas", "0.01:10:0.01", "--resolutions", "1:1000:1"],
    "10^6 candidates, 100 α × 10,000 resolutions": FIT + ["--alphas", "0.01:1:0.01", "--resolutions", "1:10000:1"],
    "10^6 candidates, 1,000 α × 1,000 resolutions, JSON": FIT + ["--alphas", "0.01:10:0.01",
                                                                 "--resolutions", "1:1000:1", "-f", "json"],
    "10^6 candidates, 1,000 α × 1,000 resolutions, --max-activations 2MB too": FIT + [
        "--max-activations", "2MB", "--alphas", "0.01:10:0.01", "--resolutions", "1:1000:1"],
}


def run_once(cmd: list[str]) -> tuple[float, int]:
    """Wall seconds and peak resident bytes of one process."""
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=ENV)
    _, status, usage = os.wait4(proc.pid, 0)
    seconds = time.perf_counter() - start
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode not in (0, 1):  # 1: nothing fits, still a whole search
        raise SystemExit(f"{' '.join(cmd)} exited {proc.returncode}")
    # ru_maxrss is in kilobytes on Linux, in bytes on macOS
    return seconds, usage.ru_maxrss * (1 if platform.system() == "Darwin" else 1024)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    compile_mnsize()
    for cmd in COMMANDS.values():  # warm-up round
        run_once(cmd)
    seconds: dict[str, list[float]] = {name: [] for name in COMMANDS}
    peak: dict[str, int] = {name: 0 for name in COMMANDS}
    for _ in range(args.runs):
        for name, cmd in COMMANDS.items():
            wall, rss = run_once(cmd)
            seconds[name].append(wall)
            peak[name] = max(peak[name], rss)
    print(f"{date.today()} · {platform.machine()} · {os.cpu_count()} cores · Python {platform.python_version()} · "
          f"{args.runs} runs each, interleaved, after a warm-up round\n")
    print("| mnsize fit --max-madds 150M over | median s | p10 s | p90 s | peak RSS MiB |")
    print("|---|---:|---:|---:|---:|")
    for name, values in seconds.items():
        print(f"| {name} | {statistics.median(values):.2f} | {quantile(values, 0.1):.2f} | "
              f"{quantile(values, 0.9):.2f} | {peak[name] / 2**20:.0f} |")
    median, mib = statistics.median(seconds[TARGET]), peak[TARGET] / 2**20
    met = median <= 2.0 and mib <= 100
    print(f"\nmnsize fit over 10^6 candidates: {median:.2f} s, peak {mib:.0f} MiB "
          f"(target <= 2 s and <= 100 MiB): {'met' if met else 'NOT met'}")


if __name__ == "__main__":
    main()
