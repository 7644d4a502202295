"""Accuracy against cost, like Figures 4 and 5 of Howard et al. 2017: the
published checkpoints at their exact mult-adds and parameters, the frontier
of the best top-1 for the cost, and the budgets of a fit. matplotlib (the
`plot` extra) draws the picture; without it the text rendering still works."""

from __future__ import annotations

import os

from .errors import MnsizeError
from .files import check_destination, replace_atomically
from .metrics import Limits
from .sweep import Candidate

FILE_TYPES = (".png", ".svg", ".pdf")


def accuracy_frontier(points: list[Candidate], cost: str = "madds") -> list[Candidate]:
    """The points that no other beats with higher top-1 at no more cost."""
    result, best = [], float("-inf")
    for c in sorted(points, key=lambda c: (getattr(c, cost), -c.top1)):
        if c.top1 > best:
            result.append(c)
            best = c.top1
    return result


def check_out_path(path: str, inputs: list[str]) -> None:
    """Refuse an output path before any work is done (nothing is written on
    bad input), and never over one of the run's ``inputs``."""
    if os.path.splitext(path)[1].lower() not in FILE_TYPES:
        raise MnsizeError(f"{path}: the picture's file type must be one of {', '.join(FILE_TYPES)}")
    check_destination(path, inputs=inputs, what="picture")


def draw(points: list[Candidate], limits: Limits, path: str) -> None:
    """Write the two panels (top-1 against mult-adds and against params) to ``path``."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
        from matplotlib import ticker
    except ImportError:
        raise MnsizeError('plot --out needs matplotlib: pip install "mnsize[plot]"') from None

    fig, axes = plt.subplots(1, 2, figsize=(12, 5), sharey=True)
    models = sorted({c.model for c in points})
    colors = dict(zip(models, plt.rcParams["axes.prop_cycle"].by_key()["color"]))
    for ax, cost, label, scale in ((axes[0], "madds", "mult-adds (millions, log scale)", 1e6),
                                   (axes[1], "params", "parameters (millions, log scale)", 1e6)):
        for model in models:
            mine = [c for c in points if c.model == model]
            fitting = [c for c in mine if limits.admit(c)] if limits else mine
            others = [c for c in mine if c not in fitting]
            ax.scatter([getattr(c, cost) / scale for c in fitting], [c.top1 for c in fitting], color=colors[model],
                       label=f"{model} (published)", zorder=3)
            if others:
                ax.scatter([getattr(c, cost) / scale for c in others], [c.top1 for c in others], facecolors="none",
                           edgecolors=colors[model], label=f"{model}, over budget", zorder=3)
            for c in mine:
                ax.annotate(f"{float(c.alpha):g}-{c.resolution[0]}", (getattr(c, cost) / scale, c.top1),
                            textcoords="offset points", xytext=(4, -10), fontsize=7, color="0.3")
        front = accuracy_frontier(points, cost)
        ax.plot([getattr(c, cost) / scale for c in front], [c.top1 for c in front], color="0.5", linestyle="-",
                linewidth=1, label="frontier: best top-1 for the cost", zorder=2)
        limit = limits.get(cost)
        if limit is not None:
            ax.axvline(limit / scale, color="crimson", linestyle="--", linewidth=1, label=f"budget: {limit / scale:g}M")
        ax.set_xscale("log")
        ax.xaxis.set_major_locator(ticker.LogLocator(subs=(1.0, 2.0, 5.0)))
        ax.xaxis.set_major_formatter(ticker.FuncFormatter(lambda v, _: f"{v:g}"))
        ax.xaxis.set_minor_formatter(ticker.NullFormatter())
        ax.set_xlabel(label)
        ax.grid(True, which="both", linewidth=0.3)
    axes[0].set_ylabel("ImageNet top-1 (%)")
    axes[0].set_title("Accuracy vs mult-adds")
    axes[1].set_title("Accuracy vs parameters")
    axes[0].legend(fontsize=8, loc="lower right")
    fig.tight_layout()
    file_type = os.path.splitext(path)[1].lower().lstrip(".")
    try:
        replace_atomically(path, lambda temporary: fig.savefig(temporary, dpi=130, format=file_type))
    finally:
        plt.close(fig)
