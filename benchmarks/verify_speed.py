"""Whole-process time of `mnsize verify` against a bare FlopCounterMode script.

Targets: one config <= 1.3 x the bare script (benchmarks/peer_count.py torch:
import torch, build 1.0-MobileNet-224, count it with FlopCounterMode);
`mnsize verify --all` (every built-in spec x 16 configs) <= 3 s, a target set
when there were 3 built-in specs (48 configs).

    python benchmarks/verify_speed.py [--runs 7]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from timing import MNSIZE, measure

from mnsize import builtin_names

HERE = Path(__file__).resolve().parent


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=7)
    args = parser.parse_args()
    specs = len(builtin_names())
    bare, one, everything = ("bare script: import torch, build V1, FlopCounterMode",
                             "mnsize verify (1.0-224, meta device)",
                             f"mnsize verify --all ({specs} specs, {16 * specs} configs)")
    medians = measure({
        bare: [sys.executable, str(HERE / "peer_count.py"), "torch"],
        one: [MNSIZE, "verify"],
        "mnsize verify --device cpu": [MNSIZE, "verify", "--device", "cpu"],
        everything: [MNSIZE, "verify", "--all"],
        "python -c 'import torch, torch._dynamo'": [sys.executable, "-c", "import torch, torch._dynamo"],
    }, args.runs, warmup=1)
    ratio = medians[one] / medians[bare]
    print(f"verify / bare script: {ratio:.2f} (target <= 1.3): {'met' if ratio <= 1.3 else 'NOT met'}")
    seconds = medians[everything] / 1000
    print(f"verify --all: {seconds:.2f} s (target <= 3 s): {'met' if seconds <= 3 else 'NOT met'}")


if __name__ == "__main__":
    main()
