"""Whole-process time of `mnsize verify` against a bare FlopCounterMode script.

Targets: one config <= 1.3 x the bare script (benchmarks/bare_flopcounter.py:
import torch, build 1.0-MobileNet-224, count it with FlopCounterMode);
`mnsize verify --all` (every built-in spec x 16 configs) <= 3 s.
Commands run in turns after a warm-up round; medians, p10 and p90 printed as
Markdown, and the ratio of medians.

    python benchmarks/verify_speed.py [--runs 7]
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import subprocess
import sys
import time
from datetime import date
from pathlib import Path

HERE = Path(__file__).resolve().parent
BIN = Path(sys.executable).parent
ENV = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}

COMMANDS = {
    "bare script: import torch, build V1, FlopCounterMode": [sys.executable, str(HERE / "bare_flopcounter.py")],
    "mnsize verify (1.0-224, meta device)": [str(BIN / "mnsize"), "verify"],
    "mnsize verify --device cpu": [str(BIN / "mnsize"), "verify", "--device", "cpu"],
    "mnsize verify --all (48 configs)": [str(BIN / "mnsize"), "verify", "--all"],
    "python -c 'import torch; import torch._dynamo'": [sys.executable, "-c", "import torch, torch._dynamo"],
}


def time_once(cmd: list[str]) -> float:
    start = time.perf_counter()
    subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True, env=ENV)
    return (time.perf_counter() - start) * 1000


def quantile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=7)
    args = parser.parse_args()
    for cmd in COMMANDS.values():  # warm-up, and byte-code caches
        time_once(cmd)
    times: dict[str, list[float]] = {name: [] for name in COMMANDS}
    for _ in range(args.runs):
        for name, cmd in COMMANDS.items():
            times[name].append(time_once(cmd))
    print(f"{date.today()} · {platform.machine()} · {os.cpu_count()} cores · Python {platform.python_version()} · "
          f"{args.runs} runs each, interleaved, after a warm-up round\n")
    print("| command | median ms | p10 ms | p90 ms |")
    print("|---|---:|---:|---:|")
    for name, values in times.items():
        print(f"| {name} | {statistics.median(values):.0f} | {quantile(values, 0.1):.0f} | "
              f"{quantile(values, 0.9):.0f} |")
    medians = {name: statistics.median(values) for name, values in times.items()}
    names = list(COMMANDS)
    ratio = medians[names[1]] / medians[names[0]]
    print(f"\nverify / bare script: {ratio:.2f} (target <= 1.3): {'met' if ratio <= 1.3 else 'NOT met'}")
    all_s = medians[names[3]] / 1000
    print(f"verify --all: {all_s:.2f} s (target <= 3 s): {'met' if all_s <= 3 else 'NOT met'}")


if __name__ == "__main__":
    main()
