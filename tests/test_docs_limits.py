"""The bounds and refusals docs/robustness.md (and docs/spec-format.md) state
are the ones the code enforces: each figure is built from the constant the
code holds and looked for in the page."""

from __future__ import annotations

from pathlib import Path

import pytest

from mnsize import bounds

ROOT = Path(__file__).resolve().parent.parent
KiB, MiB, GiB = 2**10, 2**20, 2**30


def page(name: str) -> str:
    return " ".join((ROOT / "docs" / name).read_text(encoding="utf-8").split())


def bench_memory_limit() -> int:
    return bounds.MAX_BENCH_BYTES


STATED = {
    "alpha": lambda: f"| α | above 0, at most {bounds.MAX_ALPHA} |",
    "resolution": lambda: f"| resolution | 1 to {bounds.MAX_SIDE:,} on each side |",
    "widths": lambda: f"input channels, classes) | 1 to {bounds.MAX_CHANNELS:,} (then × α) |",
    "kernel": lambda: f"| kernel | odd, 1 to {bounds.MAX_KERNEL} |",
    "stride": lambda: f"| stride | 1 to {bounds.MAX_STRIDE:,} |",
    "repeat and rows": lambda: (f"| `repeat` | 1 to {bounds.MAX_REPEAT:,}; rows {bounds.MAX_LAYERS:,}; "
                                f"layers after repeats {bounds.MAX_EXPANDED:,} |"),
    "files": lambda: (f"| spec, budgets and profile files | {bounds.MAX_FILE_BYTES // KiB} KiB, "
                      f"{bounds.MAX_DEPTH} levels of nesting, {bounds.MAX_BUDGETS:,} budgets |"),
    "grids": lambda: f"| `fit` and `grid` grids | {bounds.MAX_GRID_VALUES:,} values of α and of resolution |",
    "fit work": lambda: (f"| `fit` work | candidates × layers ≤ {bounds.MAX_LAYER_EVALUATIONS:,}; "
                         f"α × layers ≤ {bounds.MAX_LAYER_EXPANSIONS:,} "
                         f"({bounds.MAX_PROFILED_LAYER_EXPANSIONS:,} with `--profile`) |"),
    "grid cells": lambda: f"| `grid` | {bounds.MAX_GRID_CELLS:,} cells |",
    "verify on cpu": lambda: f"| `verify --device cpu` | {bounds.MAX_CPU_BYTES // GiB} GiB, an upper bound",
    "bench memory": lambda: f"| `bench` | {bench_memory_limit() // GiB} GiB, an upper bound",
    "yaml digits": lambda: f"integers over {bounds.MAX_YAML_DIGITS} digits",
    "file sizes": lambda: (f"profiles over {bounds.MAX_FILE_BYTES // KiB} KiB, "
                           f"baselines over {bounds.MAX_BASELINE_BYTES // MiB} MiB"),
    "yaml depth": lambda: f"more than {bounds.MAX_DEPTH} levels of nesting",
    "baseline digits": lambda: f"integers of at most {bounds.MAX_BASELINE_DIGITS} digits",
    "profile threads": lambda: f"`device.threads` 1 to {bounds.MAX_THREADS}",
    "classes option": lambda: f"`--classes` above {bounds.MAX_CHANNELS:,}",
}


@pytest.mark.parametrize("what", STATED)
def test_robustness_states_the_bound(what):
    assert STATED[what]() in page("robustness.md")


def test_spec_format_states_the_row_limits():
    assert (f"a list of layer rows (at most {bounds.MAX_LAYERS:,}; {bounds.MAX_EXPANDED:,} after repeats)"
            in page("spec-format.md"))


def option_range(command: str, option: str) -> tuple:
    from mnsize.cli import cli

    (param,) = [p for p in cli.commands[command].params if p.name == option]
    return param.type.min, param.type.max


def test_bench_and_profile_option_bounds():
    threads = option_range("bench", "threads")
    batch = option_range("bench", "batch")
    runs = option_range("bench", "runs")
    seconds = option_range("profile", "seconds")
    bench_seconds = option_range("bench", "seconds")
    assert option_range("profile", "threads") == threads
    assert (f"`--threads` {threads[0]} to {threads[1]}, `--batch` {batch[0]} to {batch[1]:,}, "
            f"`--runs` {runs[0]} to {runs[1]:,}, `--seconds` {bench_seconds[0]:g} to {bench_seconds[1]:,g} "
            f"(`bench`) and {seconds[0]:g} to {seconds[1]:,g} (`profile`)" in page("robustness.md"))
    assert f"`--seconds` (default 50, {seconds[0]:g} to {seconds[1]:,g})" in page("latency.md")
