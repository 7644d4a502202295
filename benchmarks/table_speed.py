"""Whole-process time of `mnsize table` (the default model, rich table output).

Target: median <= 120 ms on the project's 2-core machine. The commands are run
in turns (interleaved) after warm-up runs, so that machine noise hits each one
alike; medians, p10 and p90 are printed as a Markdown table.

    python benchmarks/table_speed.py [--runs 30]
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

BIN = Path(sys.executable).parent


def commands(with_torch: bool) -> dict[str, list[str]]:
    cmds = {
        "python -c pass (interpreter start-up)": [sys.executable, "-c", "pass"],
        "mnsize table": [str(BIN / "mnsize"), "table"],
        "mnsize table --alpha 0.5 --res 128": [str(BIN / "mnsize"), "table", "--alpha", "0.5", "--res", "128"],
        "mnsize table --format json": [str(BIN / "mnsize"), "table", "--format", "json"],
    }
    if with_torch:
        cmds["python -c 'import torch' (what any torch-based counter pays first)"] = [
            sys.executable, "-c", "import torch"]
    return cmds


# Measure what a user's installation does: byte-code cached in __pycache__
# (pip compiles installed packages; an editable checkout caches on first run).
ENV = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}


def time_once(cmd: list[str]) -> float:
    start = time.perf_counter()
    subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True, env=ENV)
    return (time.perf_counter() - start) * 1000


def quantile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=30)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--no-torch", action="store_true", help="skip the 'import torch' reference")
    args = parser.parse_args()

    try:
        import importlib.util
        with_torch = not args.no_torch and importlib.util.find_spec("torch") is not None
    except ImportError:
        with_torch = False
    import compileall

    import mnsize

    compileall.compile_dir(str(Path(mnsize.__file__).parent), quiet=1)
    cmds = commands(with_torch)
    times: dict[str, list[float]] = {name: [] for name in cmds}
    for _ in range(args.warmup):
        for cmd in cmds.values():
            time_once(cmd)
    for _ in range(args.runs):
        for name, cmd in cmds.items():
            times[name].append(time_once(cmd))

    print(f"{date.today()} · {platform.processor() or platform.machine()} · {os.cpu_count()} cores · "
          f"Python {platform.python_version()} · {args.runs} runs each, interleaved, after {args.warmup} warm-ups\n")
    print("| command | median ms | p10 ms | p90 ms |")
    print("|---|---:|---:|---:|")
    for name, values in times.items():
        print(f"| {name} | {statistics.median(values):.1f} | {quantile(values, 0.1):.1f} | "
              f"{quantile(values, 0.9):.1f} |")
    median = statistics.median(times["mnsize table"])
    print(f"\nmnsize table median: {median:.1f} ms (target <= 120 ms): {'met' if median <= 120 else 'NOT met'}")


if __name__ == "__main__":
    main()
