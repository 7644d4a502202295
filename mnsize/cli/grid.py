"""mnsize grid: one metric over an α × resolution grid."""

from __future__ import annotations

import sys

import click

from ..metrics import COUNTED
from ..render.report import FORMATS
from ..units import DTYPES
from .base import MnsizeCommand, note_keras
from .options import ALPHA_GRID, CLASSES, RESOLUTION_GRID, convention_option


@click.command("grid", cls=MnsizeCommand)
@click.option("--model", "-m", default="mobilenet_v1", show_default=True, metavar="NAME|PATH",
              help="A built-in spec name or the path of a spec file.")
@click.option("--alphas", type=ALPHA_GRID, default="1.0,0.75,0.5,0.25", show_default=True,
              help="Width multipliers: a list, or an inclusive range start:stop:step.")
@click.option("--resolutions", type=RESOLUTION_GRID, default="224,192,160,128", show_default=True,
              help="Resolutions: a list (224,320x240), or a range start:stop:step.")
@click.option("--metric", type=click.Choice(COUNTED), default="madds", show_default=True)
@click.option("--dtype", type=click.Choice(DTYPES), default="fp32", show_default=True,
              help="Bytes per number for the size and activations metrics.")
@click.option("--classes", type=CLASSES, default=None, help="Classes of the final FC layer.")
@click.option("--format", "-f", "fmt", type=click.Choice(FORMATS), default="table", show_default=True)
@convention_option
@click.pass_context
def grid_command(ctx, model, alphas, resolutions, metric, dtype, classes, fmt, convention):
    """One metric over an α × resolution grid, like a model zoo's table.

    Cells with a released checkpoint show its published ImageNet top-1.
    """
    from ..models import load_spec
    from ..published import top1_table
    from ..render.search import render_grid
    from ..search import check_cells, check_work
    from ..sweep import evaluate

    spec = load_spec(model)
    check_cells(alphas, resolutions, hint="narrow --alphas or --resolutions")
    check_work([spec], alphas, resolutions, classes, hint="narrow --alphas or --resolutions")
    candidates = evaluate(spec, alphas, resolutions, classes, dtype, top1_table(spec.name), convention)
    render_grid(spec.name, metric, dtype, alphas, resolutions, candidates, fmt, sys.stdout, convention.name)
    note_keras(ctx, convention, spec, model)
