"""Whole-process time of `mnsize table` (the default model, rich table output).

Target: median <= 120 ms on the project's 2-core machine.

    python benchmarks/table_speed.py [--runs 30] [--against TREE]

--against TREE runs every mnsize command from this checkout and from TREE (another
source tree, such as an untouched copy of an earlier version) in the same rounds.
"""

from __future__ import annotations

import argparse
import sys

from timing import Trees, has_torch, measure


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=30)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--no-torch", action="store_true", help="skip the 'import torch' reference")
    parser.add_argument("--against", metavar="TREE", help="also time the mnsize commands from this source tree")
    args = parser.parse_args()
    trees = Trees(args.against)
    commands = {
        "python -c pass (interpreter start-up)": [sys.executable, "-c", "pass"],
        "mnsize table": trees.mnsize("table"),
        "mnsize table --alpha 0.5 --res 128": trees.mnsize("table", "--alpha", "0.5", "--res", "128"),
        "mnsize table --format json": trees.mnsize("table", "--format", "json"),
    }
    if has_torch() and not args.no_torch:
        commands["python -c 'import torch' (what any torch-based counter pays first)"] = [
            sys.executable, "-c", "import torch"]
    median = measure(commands, args.runs, args.warmup, trees)["mnsize table"]
    print(f"mnsize table median: {median:.1f} ms (target <= 120 ms): {'met' if median <= 120 else 'NOT met'}")


if __name__ == "__main__":
    main()
