"""Rendering of `mnsize explain`: every convention's totals and why they differ."""

from __future__ import annotations

from typing import IO

from ..conventions import Explanation
from ..expand import Config
from .base import Grid, describe, dump_json, write_grid
from ..units import format_count

PART_WORDS = {"BatchNorm": "BatchNorm", "activations": "activations", "pooling": "pooling", "biases": "biases",
              "element-wise": "element-wise ops"}


def _signed(n: int) -> str:
    return f"+{format_count(n, 2)}" if abs(n) >= 10**6 else f"+{n:,}"


def madds_difference(e: Explanation) -> str:
    parts = [f"{PART_WORDS[part]} {_signed(ops)}" for part, ops in e.breakdown.items() if ops]
    if e.convention.flops_per_madd != 1:
        parts.append(f"printed as {e.convention.flops_per_madd} FLOPs per mult-add")
    total = e.madds - e.paper_madds
    head = "same as the paper" if total == 0 else f"{_signed(total)}"
    return head + (": " + ", ".join(parts) if parts else "")


def params_difference(e: Explanation) -> str:
    extra = e.params - e.paper_params
    if not extra:
        return "BatchNorm apart" if e.convention.name == "paper" else "same as the paper"
    return f"+{extra:,}: BatchNorm {e.convention.bn_params_in_params}/channel"


def printed(e: Explanation) -> str:
    if not e.convention.prints:
        return f"{e.params:,} params"
    return f"{e.printed:,} {e.convention.prints}"


def explanation_json(config: Config, explanations: list[Explanation]) -> dict:
    return {"model": config.model, "alpha": float(config.alpha), "resolution": list(config.resolution),
            "classes": config.classes, "conventions": [
                {"name": e.convention.name, "tool": e.convention.tool, "prints": e.convention.prints,
                 "printed": e.printed, "madds": e.madds, "params": e.params,
                 "madds_vs_paper": e.madds - e.paper_madds, "params_vs_paper": e.params - e.paper_params,
                 "breakdown": e.breakdown, "rules": e.convention.rules} for e in explanations]}


def render_explanations(config: Config, explanations: list[Explanation], fmt: str, out: IO[str]) -> None:
    if fmt == "json":
        dump_json({"schema": "mnsize.explain/1", **explanation_json(config, explanations)}, out)
        return
    rows = [[e.convention.name, printed(e), f"{e.madds:,}", f"{e.params:,}", madds_difference(e),
             params_difference(e)] for e in explanations]
    notes = [f"{e.convention.name} ({e.convention.tool}): {e.convention.rules}." for e in explanations]
    write_grid(Grid(
        title=f"{describe(config)}: how each tool counts it",
        headers=["convention", "it prints", "mult-adds", "params", "mult-adds vs the paper", "params vs the paper"],
        right={1, 2, 3}, rows=rows, notes=notes), fmt, out)
