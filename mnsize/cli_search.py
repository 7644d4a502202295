"""mnsize grid, fit and plot: the search over alpha x resolution."""

from __future__ import annotations

import sys

import click

from .cli import cli
from .errors import MnsizeError
from .options import ALPHA_GRID, BYTES, CLASSES, COUNT, DURATION, FILE, RESOLUTION_GRID, WholeRange, convention_option
from .render import FORMATS
from .units import DTYPES, microseconds

# the same choices as mnsize.search's, named here so that registering the
# commands does not import the search (a test keeps the two in step)
METRICS = ("madds", "params", "size", "activations")
OBJECTIVES = ("madds", "params", "top1")




@cli.command()
@click.option("--model", "-m", default="mobilenet_v1", show_default=True, metavar="NAME|PATH",
              help="A built-in spec name or the path of a spec file.")
@click.option("--alphas", type=ALPHA_GRID, default="1.0,0.75,0.5,0.25", show_default=True,
              help="Width multipliers: a list, or an inclusive range start:stop:step.")
@click.option("--resolutions", type=RESOLUTION_GRID, default="224,192,160,128", show_default=True,
              help="Resolutions: a list (224,320x240), or a range start:stop:step.")
@click.option("--metric", type=click.Choice(METRICS), default="madds", show_default=True)
@click.option("--dtype", type=click.Choice(DTYPES), default="fp32", show_default=True,
              help="Bytes per number for the size and activations metrics.")
@click.option("--classes", type=CLASSES, default=None, help="Classes of the final FC layer.")
@click.option("--format", "-f", "fmt", type=click.Choice(FORMATS), default="table", show_default=True)
@convention_option
def grid(model, alphas, resolutions, metric, dtype, classes, fmt, convention):
    """One metric over an α × resolution grid, like a model zoo's table.

    Cells with a released checkpoint show its published ImageNet top-1.
    """
    from .models import load_model
    from .published import top1_table
    from .render_search import render_grid
    from .search import check_cells, check_work

    spec = load_model(model)
    check_cells(alphas, resolutions, hint="narrow --alphas or --resolutions")
    check_work([spec], alphas, resolutions, classes, hint="narrow --alphas or --resolutions")
    candidates = _evaluate(spec, alphas, resolutions, classes, dtype, top1_table(spec.name), convention)
    render_grid(spec.name, metric, dtype, alphas, resolutions, candidates, fmt, sys.stdout, convention.name)


def _evaluate(spec, alphas, resolutions, classes, dtype, top1, convention=None, profile=None):
    from .search import evaluate

    try:
        return evaluate(spec, alphas, resolutions, classes, dtype, top1, convention, profile)
    except ValueError as exc:
        raise MnsizeError(str(exc)) from None


@cli.command()
@click.option("--model", "-m", "models_", multiple=True, metavar="NAME|PATH",
              help="A spec to search (repeat to compare families). [default: mobilenet_v1]")
@click.option("--max-madds", type=COUNT, help="Mult-adds budget, e.g. 150M.")
@click.option("--max-params", type=COUNT, help="Parameter budget, e.g. 1.5M.")
@click.option("--max-size", type=BYTES, help="Stored size budget, e.g. 2MB (with --dtype).")
@click.option("--max-activations", type=BYTES, help="Peak activation memory budget, e.g. 512KiB (with --dtype).")
@click.option("--max-latency", type=DURATION, help="Latency budget, e.g. 8ms, predicted by --profile.")
@click.option("--profile", "profile_path", type=FILE, default=None,
              help="A latency profile (mnsize profile): predicts every candidate's latency.")
@click.option("--measure", is_flag=True, help="Also time the top candidates on this machine (needs torch).")
@click.option("--dtype", type=click.Choice(DTYPES), default="fp32", show_default=True,
              help="Bytes per number for size and activations.")
@click.option("--alphas", type=ALPHA_GRID, default="0.25:1.00:0.05", show_default=True,
              help="Width multipliers: a list, or an inclusive range start:stop:step.")
@click.option("--resolutions", type=RESOLUTION_GRID, default="96:224:16", show_default=True,
              help="Resolutions: a list (224,320x240), or a range start:stop:step.")
@click.option("--objective", type=click.Choice(OBJECTIVES), default="madds", show_default=True,
              help="Rank by mult-adds, params, or published top-1.")
@click.option("--top", type=WholeRange(min=1), default=5, show_default=True, help="Candidates to list.")
@click.option("--classes", type=CLASSES, default=None, help="Classes of the final FC layer.")
@click.option("--format", "-f", "fmt", type=click.Choice(["table", "json"]), default="table", show_default=True)
@convention_option
@click.pass_context
def fit(ctx, models_, max_madds, max_params, max_size, max_activations, max_latency, profile_path, measure, dtype,
        alphas, resolutions, objective, top, classes, fmt, convention):
    """The largest model within every budget given, its runners-up and the
    Pareto frontier. Exit status 1 when nothing fits.

    \b
    mnsize fit --max-madds 150M
    mnsize fit --max-size 2MB --dtype int8 --max-activations 512KiB
    mnsize fit --model mobilenet_v1 --model mobilenet_v1_shallow --max-madds 300M
    """
    from .models import load_model
    from .published import top1_table
    from .render_search import describe_candidate, misses, render_fit
    from .search import Budgets, blocks, check_work, fit as search

    if max_latency is not None and profile_path is None:
        raise click.UsageError("--max-latency needs --profile (write one with mnsize profile)")
    latency_us = microseconds(max_latency) if max_latency is not None else None
    budgets = Budgets(max_madds, max_params, max_size, max_activations, latency_us)
    if not budgets.items():
        raise click.UsageError("give at least one budget: --max-madds, --max-params, --max-size, "
                               "--max-activations or --max-latency")
    device_profile = None
    if profile_path is not None:
        from .latency import load_profile

        device_profile = load_profile(profile_path)
    specs = [load_model(name) for name in dict.fromkeys(models_ or ("mobilenet_v1",))]
    given = {spec.name: name for spec, name in zip(specs, dict.fromkeys(models_ or ("mobilenet_v1",)))}
    if objective == "top1" and not any(top1_table(spec.name) for spec in specs):
        raise click.UsageError(f"--objective top1 ranks by published ImageNet top-1, and "
                               f"{', '.join(spec.name for spec in specs)} has no published checkpoints "
                               "(configs/published.yaml); rank by madds or params")
    check_work(specs, alphas, resolutions, classes, device_profile, hint="narrow --alphas or --resolutions")
    try:
        result = search((block for spec in specs
                         for block in blocks(spec, alphas, resolutions, classes, dtype, top1_table(spec.name),
                                             convention, device_profile)), budgets, objective, top)
    except ValueError as exc:
        raise MnsizeError(str(exc)) from None
    searched = {"models": [spec.name for spec in specs], "alphas": [float(a) for a in alphas],
                "resolutions": [list(r) for r in resolutions], "count": result.searched,
                "convention": convention.name}
    measured = None
    if measure and result.ranked:
        from .bench import time_networks

        threads = int(device_profile.device.get("threads", 1)) if device_profile else 1
        configs = [(given[c.model], c.alpha, c.resolution) for c in result.ranked]
        timings = time_networks(configs, threads, seconds=2.0 * len(configs))
        measured = {c: t.median_ms for c, t in zip(result.ranked, timings)}
    render_fit(result, budgets, searched, dtype, objective, fmt, sys.stdout, measured)
    if result.best is None:
        sys.stdout.flush()
        if result.smallest is None:  # candidates fit, but none has a published top-1 to rank by
            click.echo(f"{ctx.command_path}: nothing ranked: none of the {result.feasible:,} candidates within "
                       "budget has a published top-1; rank them with --objective madds or params", err=True)
        else:
            click.echo(f"{ctx.command_path}: nothing fits: the smallest candidate, "
                       f"{describe_candidate(result.smallest)}, misses "
                       + "; ".join(misses(result.smallest, budgets)), err=True)
        ctx.exit(1)


@cli.command()
@click.option("--model", "-m", "models_", multiple=True, metavar="NAME|PATH",
              help="A spec with published checkpoints (repeat for several). [default: mobilenet_v1]")
@click.option("--max-madds", type=COUNT, help="Mark a mult-adds budget.")
@click.option("--max-params", type=COUNT, help="Mark a parameter budget.")
@click.option("--out", "-o", "out_path", type=FILE, default=None,
              help="Write the picture (.png, .svg or .pdf; needs matplotlib). [default: a text chart]")
def plot(models_, max_madds, max_params, out_path):
    """Published top-1 against exact mult-adds and parameters (the paper's
    Figures 4 and 5), with the accuracy frontier and any budgets."""
    from .models import load_model
    from .plot import accuracy_frontier, check_out_path, draw
    from .published import top1_table
    from .render_search import render_plot_text
    from .search import Budgets

    if out_path is not None:
        from .models import spec_path
        from .published import table_path

        check_out_path(out_path, [*(spec_path(name) for name in models_ or ("mobilenet_v1",)), table_path()])
    budgets = Budgets(max_madds, max_params)
    points = []
    for name in dict.fromkeys(models_ or ("mobilenet_v1",)):
        spec = load_model(name)
        table = top1_table(spec.name)
        if not table:
            raise MnsizeError(f"{spec.name}: no published checkpoints to plot (configs/published.yaml)")
        alphas = sorted({a for a, _ in table}, reverse=True)
        resolutions = sorted({r for _, r in table}, reverse=True)
        points += [c for c in _evaluate(spec, alphas, resolutions, None, "fp32", table) if c.top1 is not None]
    if out_path is None:
        render_plot_text(points, accuracy_frontier(points), budgets, sys.stdout)
    else:
        draw(points, budgets, out_path)
        click.echo(f"wrote {out_path}: {len(points)} checkpoints", err=True)
