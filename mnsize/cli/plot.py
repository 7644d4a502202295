"""mnsize plot: published top-1 against exact cost (the paper's Figures 4 and 5)."""

from __future__ import annotations

import sys

import click

from ..errors import MnsizeError
from .base import MnsizeCommand
from .options import FILE, limit_options


@click.command("plot", cls=MnsizeCommand)
@click.option("--model", "-m", "models_", multiple=True, metavar="NAME|PATH",
              help="A spec with published checkpoints (repeat for several). [default: mobilenet_v1]")
@limit_options("madds", "params", help_prefix="Mark ")
@click.option("--out", "-o", "out_path", type=FILE, default=None,
              help="Write the picture (.png, .svg or .pdf; needs matplotlib). [default: a text chart]")
def plot_command(models_, max_madds, max_params, out_path):
    """Published top-1 against exact mult-adds and parameters (the paper's
    Figures 4 and 5), with the accuracy frontier and any budgets."""
    from ..models import load_spec
    from ..plot import accuracy_frontier, check_out_path, draw
    from ..published import top1_table
    from ..render.search import render_plot_text
    from ..metrics import Limits
    from ..sweep import evaluate

    if out_path is not None:
        from ..models import spec_path
        from ..published import table_path

        check_out_path(out_path, [*(spec_path(name) for name in models_ or ("mobilenet_v1",)), table_path()])
    limits = Limits(madds=max_madds, params=max_params)
    points = []
    for name in dict.fromkeys(models_ or ("mobilenet_v1",)):
        spec = load_spec(name)
        table = top1_table(spec.name)
        if not table:
            raise MnsizeError(f"{spec.name}: no published checkpoints to plot (configs/published.yaml)")
        alphas = sorted({a for a, _ in table}, reverse=True)
        resolutions = sorted({r for _, r in table}, reverse=True)
        points += [c for c in evaluate(spec, alphas, resolutions, None, "fp32", table) if c.top1 is not None]
    if out_path is None:
        render_plot_text(points, accuracy_frontier(points), limits, sys.stdout)
    else:
        draw(points, limits, out_path)
        click.echo(f"wrote {out_path}: {len(points)} checkpoints", err=True)
