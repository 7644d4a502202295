"""Whole-process time of `mnsize fit` over 8,296 candidates.

alpha 0.05..1.40 step 0.01 (136 values) x resolution 32..512 step 8 (61
values), every candidate counted exactly. Target: median <= 0.5 s, less than
any torch-based counter takes to count one model (it must import torch first).

    python benchmarks/fit_speed.py [--runs 20] [--against TREE]

--against TREE runs every mnsize command from this checkout and from TREE (another
source tree, such as an untouched copy of an earlier version) in the same rounds.
"""

from __future__ import annotations

import argparse
import sys

from timing import Trees, has_torch, measure

GRID = ["--alphas", "0.05:1.40:0.01", "--resolutions", "32:512:8"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--against", metavar="TREE", help="also time the mnsize commands from this source tree")
    args = parser.parse_args()
    trees = Trees(args.against)
    fit_table = "mnsize fit --max-madds 150M (8,296 candidates, table)"
    commands = {
        fit_table: trees.mnsize("fit", "--max-madds", "150M", *GRID),
        "mnsize fit, same search, --format json": trees.mnsize("fit", "--max-madds", "150M", *GRID, "-f", "json"),
        "mnsize fit, two families (16,592 candidates)": trees.mnsize(
            "fit", "--model", "mobilenet_v1", "--model", "mobilenet_v1_shallow", "--max-madds", "150M", *GRID),
        "mnsize grid (the paper's 16 cells)": trees.mnsize("grid"),
    }
    if has_torch():
        commands["python -c 'import torch' (before any torch-based counter counts)"] = [
            sys.executable, "-c", "import torch"]
    median = measure(commands, args.runs, 2, trees)[fit_table]
    print(f"mnsize fit over 8,296 candidates: {median / 1000:.3f} s (target <= 0.5 s): "
          f"{'met' if median <= 500 else 'NOT met'}")


if __name__ == "__main__":
    main()
