"""Whole-process time of `mnsize table` (the default model, rich table output).

Target: median <= 120 ms on the project's 2-core machine.

    python benchmarks/table_speed.py [--runs 30]
"""

from __future__ import annotations

import argparse
import sys

from timing import MNSIZE, has_torch, measure


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=30)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--no-torch", action="store_true", help="skip the 'import torch' reference")
    args = parser.parse_args()
    commands = {
        "python -c pass (interpreter start-up)": [sys.executable, "-c", "pass"],
        "mnsize table": [MNSIZE, "table"],
        "mnsize table --alpha 0.5 --res 128": [MNSIZE, "table", "--alpha", "0.5", "--res", "128"],
        "mnsize table --format json": [MNSIZE, "table", "--format", "json"],
    }
    if has_torch() and not args.no_torch:
        commands["python -c 'import torch' (what any torch-based counter pays first)"] = [
            sys.executable, "-c", "import torch"]
    median = measure(commands, args.runs, args.warmup)["mnsize table"]
    print(f"mnsize table median: {median:.1f} ms (target <= 120 ms): {'met' if median <= 120 else 'NOT met'}")


if __name__ == "__main__":
    main()
