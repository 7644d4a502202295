"""mnsize against the peer counters, side by side: whole-process time and peak
memory (maximum resident set size) of

- mnsize table, mnsize fit over 8,296 candidates, mnsize verify (1.0-224);
- ptflops, thop, fvcore, torchinfo and FlopCounterMode each counting the same
  1.0-MobileNet-224 (benchmarks/peer_count.py: import torch, build, count).

Commands run in turns, after a warm-up round; medians and the ratio to
`mnsize table` are printed as a Markdown table.

    python benchmarks/compare_peers.py [--runs 5]
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

from timing import ENV, MNSIZE, compile_mnsize

HERE = Path(__file__).resolve().parent
PEER = [sys.executable, str(HERE / "peer_count.py")]
COMMANDS = {
    "mnsize table": [MNSIZE, "table"],
    "mnsize fit --max-madds 150M (8,296 candidates)": [MNSIZE, "fit", "--max-madds", "150M", "--alphas",
                                                       "0.05:1.40:0.01", "--resolutions", "32:512:8"],
    "mnsize verify (builds the model, FlopCounterMode on meta)": [MNSIZE, "verify"],
    "ptflops 0.7.5": [*PEER, "ptflops"],
    "thop 0.1.1": [*PEER, "thop"],
    "fvcore 0.1.5": [*PEER, "fvcore"],
    "torchinfo 1.8.0": [*PEER, "torchinfo"],
    "FlopCounterMode (torch 2.13)": [*PEER, "torch"],
}


def run(cmd: list[str]) -> tuple[float, int]:
    """Wall-clock ms and peak resident KiB of one whole process."""
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=ENV)
    _, status, usage = os.wait4(proc.pid, 0)
    elapsed = (time.perf_counter() - start) * 1000
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"failed: {' '.join(cmd)}")
    return elapsed, usage.ru_maxrss  # KiB on Linux


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    compile_mnsize()
    for cmd in COMMANDS.values():
        run(cmd)
    samples: dict[str, list[tuple[float, int]]] = {name: [] for name in COMMANDS}
    for _ in range(args.runs):
        for name, cmd in COMMANDS.items():
            samples[name].append(run(cmd))
    base = statistics.median(ms for ms, _ in samples["mnsize table"])
    print(f"{date.today()} · {platform.machine()} · {os.cpu_count()} cores · Python {platform.python_version()} · "
          f"{args.runs} runs each, interleaved, after a warm-up round\n")
    print("| counting 1.0-MobileNet-224 with | median ms | × mnsize table | peak memory MiB |")
    print("|---|---:|---:|---:|")
    for name, values in samples.items():
        ms = statistics.median(v[0] for v in values)
        peak = statistics.median(v[1] for v in values) / 1024
        print(f"| {name} | {ms:.0f} | {ms / base:.1f} | {peak:.0f} |")


if __name__ == "__main__":
    main()
