"""mnsize fit: the largest model within every budget given."""

from __future__ import annotations

import sys

import click

from ..metrics import DEFAULT_ALPHAS, DEFAULT_RESOLUTIONS, METRICS, OBJECTIVES
from ..runtimes import RUNTIMES
from ..units import DTYPES
from .base import MnsizeCommand, note_keras, warn_if_poor
from .options import ALPHA_GRID, CLASSES, FILE, RESOLUTION_GRID, WholeRange, convention_option, given_limits, \
    limit_options


@click.command("fit", cls=MnsizeCommand)
@click.option("--model", "-m", "models_", multiple=True, metavar="NAME|PATH",
              help="A spec to search (repeat to compare families). [default: mobilenet_v1]")
@limit_options(*METRICS)
@click.option("--profile", "profile_path", type=FILE, default=None,
              help="A latency profile (mnsize profile): predicts every candidate's latency.")
@click.option("--measure", is_flag=True, help="Also time the top candidates on this machine (needs torch).")
@click.option("--runtime", type=click.Choice(RUNTIMES), default="torch", show_default=True,
              help="With --measure: the runtime to time the candidates in.")
@click.option("--dtype", type=click.Choice(DTYPES), default="fp32", show_default=True,
              help="Bytes per number for size and activations.")
@click.option("--alphas", type=ALPHA_GRID, default=DEFAULT_ALPHAS, show_default=True,
              help="Width multipliers: a list, or an inclusive range start:stop:step.")
@click.option("--resolutions", type=RESOLUTION_GRID, default=DEFAULT_RESOLUTIONS, show_default=True,
              help="Resolutions: a list (224,320x240), or a range start:stop:step.")
@click.option("--objective", type=click.Choice(OBJECTIVES), default="madds", show_default=True,
              help="Rank by mult-adds, params, or published top-1.")
@click.option("--top", type=WholeRange(min=1), default=5, show_default=True, help="Candidates to list.")
@click.option("--classes", type=CLASSES, default=None, help="Classes of the final FC layer.")
@click.option("--format", "-f", "fmt", type=click.Choice(["table", "json"]), default="table", show_default=True)
@convention_option
@click.pass_context
def fit_command(ctx, models_, profile_path, measure, runtime, dtype, alphas, resolutions, objective, top, classes, fmt,
                convention, **options):
    """The largest model within every budget given, its runners-up and the
    Pareto frontier. Exit status 1 when nothing fits.

    \b
    mnsize fit --max-madds 150M
    mnsize fit --max-size 2MB --dtype int8 --max-activations 512KiB
    mnsize fit --model mobilenet_v1 --model mobilenet_v1_shallow --max-madds 300M
    """
    from ..models import load_spec
    from ..published import top1_table
    from ..render.search import describe_candidate, misses, render_fit
    from ..search import fit_specs

    limits = given_limits(options)
    if limits.get("latency") is not None and profile_path is None:
        raise click.UsageError("--max-latency needs --profile (write one with mnsize profile)")
    if not limits:
        raise click.UsageError("give at least one budget: --max-madds, --max-params, --max-size, "
                               "--max-activations or --max-latency")
    device_profile = None
    if profile_path is not None:
        from ..latency import load_profile

        device_profile = load_profile(profile_path)
        warn_if_poor(ctx, device_profile)
    specs = [load_spec(name) for name in dict.fromkeys(models_ or ("mobilenet_v1",))]
    given = {spec.name: name for spec, name in zip(specs, dict.fromkeys(models_ or ("mobilenet_v1",)))}
    if objective == "top1" and not any(top1_table(spec.name) for spec in specs):
        raise click.UsageError(f"--objective top1 ranks by published ImageNet top-1, and "
                               f"{', '.join(spec.name for spec in specs)} has no published checkpoints "
                               "(configs/published.yaml); rank by madds or params")
    result = fit_specs(specs, alphas, resolutions, limits, objective, top, classes, dtype, convention, device_profile,
                       hint="narrow --alphas or --resolutions")
    searched = {"models": [spec.name for spec in specs], "alphas": [float(a) for a in alphas],
                "resolutions": [list(r) for r in resolutions], "count": result.searched,
                "convention": convention.name}
    measured = None
    if measure and result.ranked:
        from ..bench import time_networks

        threads = int(device_profile.device.get("threads", 1)) if device_profile else 1
        configs = [(given[c.model], c.alpha, c.resolution) for c in result.ranked]
        timings = time_networks(configs, threads, seconds=2.0 * len(configs), runtime=runtime)
        measured = {c: t.latency_ms for c, t in zip(result.ranked, timings)}
    render_fit(result, limits, searched, dtype, objective, fmt, sys.stdout, measured)
    for spec in specs:
        note_keras(ctx, convention, spec, given[spec.name])
    if result.best is None:
        sys.stdout.flush()
        if result.smallest is None:  # candidates fit, but none has a published top-1 to rank by
            click.echo(f"{ctx.command_path}: nothing ranked: none of the {result.feasible:,} candidates within "
                       "budget has a published top-1; rank them with --objective madds or params", err=True)
        else:
            click.echo(f"{ctx.command_path}: nothing fits: the smallest candidate, "
                       f"{describe_candidate(result.smallest)}, misses "
                       + "; ".join(misses(result.smallest, limits)), err=True)
        ctx.exit(1)
