"""Shared whole-process timing for the benchmarks: commands run in turns
(interleaved) after warm-up rounds, so that machine noise hits each alike;
medians with p10 and p90, printed as Markdown."""

from __future__ import annotations

import os
import platform
import statistics
import subprocess
import sys
import time
from datetime import date
from pathlib import Path

BIN = Path(sys.executable).parent
MNSIZE = str(BIN / "mnsize")
# Measure what an installation does: byte-code cached in __pycache__ (pip
# compiles installed packages; an editable checkout caches on first run).
ENV = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}


def compile_mnsize() -> None:
    import compileall

    import mnsize

    compileall.compile_dir(str(Path(mnsize.__file__).parent), quiet=1)


def time_once(cmd: list[str]) -> float:
    start = time.perf_counter()
    subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True, env=ENV)
    return (time.perf_counter() - start) * 1000


def quantile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def measure(commands: dict[str, list[str]], runs: int, warmup: int) -> dict[str, float]:
    """Time every command ``runs`` times in turns; print the table; return medians (ms)."""
    compile_mnsize()
    for _ in range(warmup):
        for cmd in commands.values():
            time_once(cmd)
    times: dict[str, list[float]] = {name: [] for name in commands}
    for _ in range(runs):
        for name, cmd in commands.items():
            times[name].append(time_once(cmd))
    print(f"{date.today()} · {platform.machine()} · {os.cpu_count()} cores · Python {platform.python_version()} · "
          f"{runs} runs each, interleaved, after {warmup} warm-up round(s)\n")
    print("| command | median ms | p10 ms | p90 ms |")
    print("|---|---:|---:|---:|")
    for name, values in times.items():
        print(f"| {name} | {statistics.median(values):.1f} | {quantile(values, 0.1):.1f} | "
              f"{quantile(values, 0.9):.1f} |")
    print()
    return {name: statistics.median(values) for name, values in times.items()}


def has_torch() -> bool:
    import importlib.util

    return importlib.util.find_spec("torch") is not None
