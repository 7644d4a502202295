"""mnsize check: the budget gate for CI."""

from __future__ import annotations

import os
import sys

import click

from .cli import cli, resolve_resolution
from .errors import MnsizeError
from .options import BYTES, COUNT, DURATION, FILE, PERCENT, convention_option, model_options
from .units import DTYPES


@cli.command()
@click.argument("files", nargs=-1, type=FILE)
@click.option("--format", "-f", "fmt", type=click.Choice(["table", "json", "github", "junit"]), default="table",
              show_default=True, help="github: workflow annotations and a job summary; junit: JUnit XML.")
@click.option("--output", "-o", "output", type=FILE, default=None,
              help="Write the report to this file instead of stdout.")
@click.option("--baseline", type=FILE, default=None,
              help="A baseline written by --write-baseline; use with --max-growth.")
@click.option("--max-growth", type=PERCENT, default=None,
              help="Also fail a metric that grew more than this since the baseline, e.g. 5%.")
@click.option("--write-baseline", type=FILE, default=None,
              help="Record today's values of every budget to this file.")
@model_options
@click.option("--max-madds", type=COUNT, help="Ad hoc: a mult-adds limit for --model.")
@click.option("--max-params", type=COUNT, help="Ad hoc: a parameter limit.")
@click.option("--max-size", type=BYTES, help="Ad hoc: a stored size limit (with --dtype).")
@click.option("--max-activations", type=BYTES, help="Ad hoc: a peak activation memory limit (with --dtype).")
@click.option("--max-latency", type=DURATION, help="Ad hoc: a latency limit, predicted by --profile.")
@click.option("--profile", "profile_path", type=FILE, default=None, help="Ad hoc: the latency profile to predict with.")
@click.option("--dtype", type=click.Choice(DTYPES), default="fp32", show_default=True)
@click.option("--warn-at", type=PERCENT, default=None, help="Ad hoc: warn above this share of a limit, e.g. 90%.")
@convention_option
@click.pass_context
def check(ctx, files, fmt, output, baseline, max_growth, write_baseline, model, alpha, resolution, rho, classes,
          max_madds, max_params, max_size, max_activations, max_latency, profile_path, dtype, warn_at, convention):
    """The budget gate for CI: exit 1 when any model is over a budget.

    Checks the budgets files given (YAML, see the README), or one ad hoc
    budget from --model and the --max-* options. Exit status 0 when every
    budget holds (warnings included), 1 when any is exceeded, 2 for bad input.

    \b
    mnsize check configs/budgets.yaml
    mnsize check configs/budgets.yaml --format github
    mnsize check --model mobilenet_v1 --alpha 0.5 --max-madds 150M
    """
    from click.core import ParameterSource

    from .budgets import Budget, load_budgets
    from .check import baseline_json, check as run_check, read_baseline
    from .render_check import message, render_check, summary_markdown

    latency_us = int(max_latency * 1000) if max_latency is not None else None
    ad_hoc = [(metric, limit) for metric, limit in (("madds", max_madds), ("params", max_params),
                                                     ("size", max_size), ("activations", max_activations),
                                                     ("latency", latency_us))
              if limit is not None]
    if max_latency is not None and profile_path is None:
        raise click.UsageError("--max-latency needs --profile (write one with mnsize profile)")
    explicit = [name for name in ("model", "alpha", "resolution", "rho", "classes", "warn_at", "profile_path")
                if ctx.get_parameter_source(name) is not ParameterSource.DEFAULT]
    if files and (ad_hoc or explicit):
        raise click.UsageError("give budgets files or an ad hoc budget (--model ... --max-madds ...), not both")
    if not files and not ad_hoc:
        raise click.UsageError("give a budgets file, or --model with at least one --max-madds, --max-params, "
                               "--max-size or --max-activations")
    if (baseline is None) != (max_growth is None):
        raise click.UsageError("--baseline and --max-growth go together")
    if files:
        budgets = [b for path in files for b in load_budgets(path)]
        names = {}
        for b in budgets:
            if b.name in names:
                raise MnsizeError(f"{b.file}: budget {b.name!r} is also defined in {names[b.name]}")
            names[b.name] = b.file
    else:
        if rho is not None:
            from .models import load_model

            resolution = resolve_resolution(load_model(model), resolution, rho)
        budgets = [Budget(name=model, model=model, alpha=alpha, resolution=resolution, classes=classes, dtype=dtype,
                          limits=tuple(ad_hoc), warn_at=warn_at, profile=profile_path)]
    import io
    import json

    before = read_baseline(baseline) if baseline else None
    results = run_check(budgets, before, max_growth, convention)
    report = io.StringIO()
    render_check(results, fmt, report)
    if write_baseline:
        _write(write_baseline, json.dumps(baseline_json(budgets), indent=2) + "\n")
        click.echo(f"{ctx.command_path}: wrote the baseline of {len(budgets)} budgets to {write_baseline}", err=True)
    if output:
        _write(output, report.getvalue())
    else:
        sys.stdout.write(report.getvalue())
    summary_path = os.environ.get("GITHUB_STEP_SUMMARY")
    if fmt == "github" and summary_path:
        try:
            with open(summary_path, "a", encoding="utf-8") as file:
                file.write(summary_markdown(results))
        except OSError as exc:
            raise MnsizeError(f"GITHUB_STEP_SUMMARY ({summary_path}): cannot append: {exc.strerror}") from None
    failed = [r for r in results if r.status == "fail"]
    if failed:
        sys.stdout.flush()
        for r in failed:
            where = f"{r.budget.file}:{r.budget.line_of(r.metric)}: " if r.budget.file else ""
            click.echo(f"{ctx.command_path}: over budget: {where}{message(r)}", err=True)
        ctx.exit(1)


def _write(path: str, text: str) -> None:
    try:
        with open(path, "w", encoding="utf-8") as file:
            file.write(text)
    except OSError as exc:
        raise MnsizeError(f"{path}: cannot write: {exc.strerror}") from None
