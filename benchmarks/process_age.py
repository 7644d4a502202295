"""Whether a process that has timed many networks times the next ones as a
fresh process does: the reason `mnsize profile` times each group of its
calibration networks in a child process forked before anything is built
(mnsize.bench._forked).

For each runtime and each way of timing (in one process, as before; in a
forked child per group, as `profile` does), a separate process times the
validation networks of latency_accuracy.py, then the 112 calibration
networks as a default profile does, then the validation networks again, and
prints each network's latency (p10) after over before, and the median. A
ratio above 1 is a process that slowed down with age. Each way runs in its
own process, so neither inherits the other's memory.

    python benchmarks/process_age.py [--runtimes torch,onnxruntime]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
from datetime import date

from latency_accuracy import VALIDATION

#: what a default profile gives the timed runs of the 112 networks, in seconds, on the machine of docs/latency.md
CALIBRATION_TIMING_S = 23.0
#: seconds for the validation networks, so that each gets about as long a round as in a profile
VALIDATION_TIMING_S = 2.2


def one_way(runtime: str, forked: bool) -> list[tuple[float, float]]:
    """(before, after) p10 of each validation network, timed in this process."""
    from mnsize import bench
    from mnsize.calibrate import CALIBRATION_NETWORKS
    from mnsize.runtimes import keep_freed_memory

    keep_freed_memory()
    bench.FORK = forked
    configs = [tuple(config) for config in VALIDATION]

    def validation() -> list[float]:
        return [t.latency_ms for t in bench.time_networks(configs, 1, VALIDATION_TIMING_S, 3, runtime=runtime)]

    before = validation()
    bench.time_networks(list(CALIBRATION_NETWORKS), 1, CALIBRATION_TIMING_S, 3, runtime=runtime)
    return list(zip(before, validation()))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runtimes", default="torch,onnxruntime")
    parser.add_argument("--child", nargs=2, metavar=("RUNTIME", "WAY"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        runtime, way = args.child
        print(json.dumps(one_way(runtime, way == "forked")))
        return
    print(f"{date.today()} · {platform.machine()} · {os.cpu_count()} cores · 1 thread · latency (p10) of each "
          "validation network after the calibration networks over before, in the same process\n")
    print("| runtime | timed | " + " | ".join(f"{m.removeprefix('mobilenet_')} {a}, {r}" for m, a, r in VALIDATION)
          + " | median |")
    print("|---|---|" + "---:|" * (len(VALIDATION) + 1))
    for runtime in args.runtimes.split(","):
        for way in ("one process", "forked"):
            done = subprocess.run([sys.executable, __file__, "--child", runtime, way.split()[0]], check=True,
                                  capture_output=True, text=True)
            ratios = [after / before for before, after in json.loads(done.stdout)]
            print(f"| {runtime} | {way} | " + " | ".join(f"{r:.2f}" for r in ratios)
                  + f" | **{statistics.median(ratios):.2f}** |")


if __name__ == "__main__":
    main()
