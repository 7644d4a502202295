"""The mnsize command line: parse options, call one function, render, map
errors to exit codes (0 ok, 1 a check the user asked for failed, 2 bad input
or a tool error). Thin by design: the work is in the modules below it."""

from __future__ import annotations

import io
import json
import os
import sys

import click

from . import __version__
from .errors import MnsizeError
from .options import ALPHA_GRID, BYTES, COUNT, PERCENT, RESOLUTION_GRID, model_options
from .render import FORMATS, describe

METRICS = ("madds", "params", "size", "activations")
OBJECTIVES = ("madds", "params", "top1")


class _Failure(click.ClickException):
    """An MnsizeError raised inside a command, tagged with that command's context."""

    def __init__(self, message: str, ctx: click.Context) -> None:
        super().__init__(message)
        self.ctx = ctx


class _PipeClosed(Exception):
    """stdout's reader went away (click would turn the BrokenPipeError into exit 1)."""


class MnsizeCommand(click.Command):
    def invoke(self, ctx):
        try:
            result = super().invoke(ctx)
            sys.stdout.flush()
            return result
        except MnsizeError as exc:
            raise _Failure(str(exc), ctx) from None
        except BrokenPipeError:
            raise _PipeClosed from None


class MnsizeGroup(click.Group):
    """Reports every usage error and MnsizeError as one line on stderr with exit
    status 2, instead of click's multi-line usage block or a traceback."""

    command_class = MnsizeCommand

    def main(self, args=None, prog_name=None, complete_var=None, standalone_mode=True, **extra):
        try:
            code = super().main(args, prog_name or "mnsize", complete_var, standalone_mode=False, **extra)
        except click.exceptions.NoArgsIsHelpError as exc:
            click.echo(exc.ctx.get_help())
            code = 0
        except click.ClickException as exc:
            ctx = getattr(exc, "ctx", None)
            code = _fail(exc.format_message(), ctx.command_path if ctx is not None else "mnsize")
        except MnsizeError as exc:
            code = _fail(str(exc), "mnsize")
        except click.exceptions.Abort:
            code = _fail("aborted", "mnsize", status=130)
        except _PipeClosed:
            # `mnsize table | head`: the reader left. Exit as a process killed by
            # SIGPIPE would (128 + 13), and keep Python quiet at its final flush.
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
            code = 141
        code = code if isinstance(code, int) else 0
        if standalone_mode:
            sys.exit(code)
        return code


def _fail(message: str, where: str, status: int = 2) -> int:
    one_line = " ".join(message.split())
    click.echo(f"{where}: error: {one_line}", err=True)
    return status


@click.group("mnsize", cls=MnsizeGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="mnsize")
def cli():
    """Exact mult-adds, parameters and sizing for MobileNets, from YAML layer specs."""


def _load(model, alpha, resolution, rho, classes):
    """Load and expand a spec from the shared model options."""
    from .expand import Config, expand, resolution_from_rho
    from .models import load_model

    if resolution is not None and rho is not None:
        raise click.UsageError("give either --res or --rho, not both")
    spec = load_model(model)
    if rho is not None:
        resolution = resolution_from_rho(spec, rho)
    config = Config(model=spec.name, alpha=alpha, resolution=resolution or spec.resolution,
                    classes=classes or spec.classes)
    try:
        layers = expand(spec, config.alpha, config.resolution, config.classes)
    except ValueError as exc:
        raise MnsizeError(str(exc)) from None
    return config, layers


@cli.command()
@model_options
@click.option("--format", "-f", "fmt", type=click.Choice(FORMATS), default="table", show_default=True)
@click.option("--by-kind", is_flag=True, help="Mult-adds and params per layer type (the paper's Table 2).")
@click.option("--standard", is_flag=True,
              help="Each separable pair against a standard conv with the same input and output.")
def table(model, alpha, resolution, rho, classes, fmt, by_kind, standard):
    """Every layer's shapes, mult-adds and parameters, with exact totals.

    \b
    mnsize table --alpha 0.5 --res 128
    mnsize table --model configs/mobilenet_v1.yaml --format json
    """
    from .costs import count
    from .render import render_report

    if by_kind and standard:
        raise click.UsageError("give either --by-kind or --standard, not both")
    config, layers = _load(model, alpha, resolution, rho, classes)
    view = "by_kind" if by_kind else "standard" if standard else "layers"
    render_report(config, count(layers), view, fmt, sys.stdout)


PAPER_ALPHAS = ("1.0", "0.75", "0.5", "0.25")
PAPER_RESOLUTIONS = (224, 192, 160, 128)


@cli.command()
@model_options
@click.option("--device", type=click.Choice(["meta", "cpu"]), default="meta", show_default=True,
              help="meta: shapes and FLOPs without allocating anything; cpu: a real forward pass.")
@click.option("--all", "all_", is_flag=True,
              help="Every built-in spec (or the --model given) over the paper's α {1.0, 0.75, 0.5, 0.25} × "
                   "resolution {224, 192, 160, 128} grid.")
@click.option("--format", "-f", "fmt", type=click.Choice(["table", "json"]), default="table", show_default=True)
@click.pass_context
def verify(ctx, model, alpha, resolution, rho, classes, device, all_, fmt):
    """Build the model in PyTorch and check every layer's counts against it.

    The torch side counts independently: FlopCounterMode FLOPs / 2 for
    mult-adds, numel() for parameters, forward hooks for output shapes.
    Exit status 1 when any layer differs.

    \b
    mnsize verify --alpha 0.5 --res 160x128
    mnsize verify --all
    """
    from click.core import ParameterSource

    from .models import builtin_names, load_model
    from .render import render_verification, render_verifications
    from .verify import import_torch, verify_grid

    explicit = {name for name in ("alpha", "resolution", "rho")
                if ctx.get_parameter_source(name) is not ParameterSource.DEFAULT}
    if all_ and explicit:
        raise click.UsageError("--all checks the paper's grid: give no --alpha, --res or --rho with it")
    if resolution is not None and rho is not None:
        raise click.UsageError("give either --res or --rho, not both")
    names = [model] if not all_ or ctx.get_parameter_source("model") is not ParameterSource.DEFAULT \
        else list(builtin_names())
    specs = [load_model(name) for name in names]
    import_torch()
    if all_:
        results = [v for spec in specs
                   for v in verify_grid(spec, PAPER_ALPHAS, PAPER_RESOLUTIONS, classes, device)]
        render_verifications(results, device, fmt, sys.stdout)
    else:
        (spec,) = specs
        from .expand import resolution_from_rho

        res = resolution_from_rho(spec, rho) if rho is not None else resolution or spec.resolution
        try:
            results = verify_grid(spec, [alpha], [res], classes, device)
        except ValueError as exc:
            raise MnsizeError(str(exc)) from None
        render_verification(results[0], device, fmt, sys.stdout)
    failed = [v for v in results if not v.match]
    if failed:
        sys.stdout.flush()
        for v in failed:
            layers = ", ".join(f"{c.row.layer.name} ({', '.join(c.differences)})" for c in v.mismatches)
            click.echo(f"{ctx.command_path}: mismatch: {describe(v.config)}: {layers or 'totals'}", err=True)
        ctx.exit(1)


DTYPES = ("fp32", "fp16", "int8")


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
@click.option("--classes", type=click.IntRange(min=1), default=None, help="Classes of the final FC layer.")
@click.option("--format", "-f", "fmt", type=click.Choice(FORMATS), default="table", show_default=True)
def grid(model, alphas, resolutions, metric, dtype, classes, fmt):
    """One metric over an α × resolution grid, like a model zoo's table.

    Cells with a released checkpoint show its published ImageNet top-1.
    """
    from .models import load_model
    from .published import top1_table
    from .render_search import render_grid
    from .search import evaluate

    spec = load_model(model)
    candidates = _evaluate(spec, alphas, resolutions, classes, dtype, top1_table(spec.name))
    render_grid(spec.name, metric, dtype, alphas, resolutions, candidates, fmt, sys.stdout)


def _evaluate(spec, alphas, resolutions, classes, dtype, top1):
    from .search import evaluate

    try:
        return evaluate(spec, alphas, resolutions, classes, dtype, top1)
    except ValueError as exc:
        raise MnsizeError(str(exc)) from None


@cli.command()
@click.option("--model", "-m", "models_", multiple=True, metavar="NAME|PATH",
              help="A spec to search (repeat to compare families). [default: mobilenet_v1]")
@click.option("--max-madds", type=COUNT, help="Mult-adds budget, e.g. 150M.")
@click.option("--max-params", type=COUNT, help="Parameter budget, e.g. 1.5M.")
@click.option("--max-size", type=BYTES, help="Stored size budget, e.g. 2MB (with --dtype).")
@click.option("--max-activations", type=BYTES, help="Peak activation memory budget, e.g. 512KiB (with --dtype).")
@click.option("--dtype", type=click.Choice(DTYPES), default="fp32", show_default=True,
              help="Bytes per number for size and activations.")
@click.option("--alphas", type=ALPHA_GRID, default="0.25:1.00:0.05", show_default=True,
              help="Width multipliers: a list, or an inclusive range start:stop:step.")
@click.option("--resolutions", type=RESOLUTION_GRID, default="96:224:16", show_default=True,
              help="Resolutions: a list (224,320x240), or a range start:stop:step.")
@click.option("--objective", type=click.Choice(OBJECTIVES), default="madds", show_default=True,
              help="Rank by mult-adds, params, or published top-1.")
@click.option("--top", type=click.IntRange(min=1), default=5, show_default=True, help="Candidates to list.")
@click.option("--classes", type=click.IntRange(min=1), default=None, help="Classes of the final FC layer.")
@click.option("--format", "-f", "fmt", type=click.Choice(["table", "json"]), default="table", show_default=True)
@click.pass_context
def fit(ctx, models_, max_madds, max_params, max_size, max_activations, dtype, alphas, resolutions, objective, top,
        classes, fmt):
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
    from .search import Budgets, fit as search

    budgets = Budgets(max_madds, max_params, max_size, max_activations)
    if not budgets.items():
        raise click.UsageError("give at least one budget: --max-madds, --max-params, --max-size or "
                               "--max-activations")
    specs = [load_model(name) for name in dict.fromkeys(models_ or ("mobilenet_v1",))]
    candidates = [c for spec in specs
                  for c in _evaluate(spec, alphas, resolutions, classes, dtype, top1_table(spec.name))]
    result = search(candidates, budgets, objective, top)
    searched = {"models": [spec.name for spec in specs], "alphas": [float(a) for a in alphas],
                "resolutions": [list(r) for r in resolutions], "count": len(candidates)}
    render_fit(result, budgets, searched, dtype, objective, fmt, sys.stdout)
    if result.best is None:
        sys.stdout.flush()
        click.echo(f"{ctx.command_path}: nothing fits: the smallest candidate, "
                   f"{describe_candidate(result.smallest)}, misses " + "; ".join(misses(result.smallest, budgets)),
                   err=True)
        ctx.exit(1)


@cli.command()
@click.option("--model", "-m", "models_", multiple=True, metavar="NAME|PATH",
              help="A spec with published checkpoints (repeat for several). [default: mobilenet_v1]")
@click.option("--max-madds", type=COUNT, help="Mark a mult-adds budget.")
@click.option("--max-params", type=COUNT, help="Mark a parameter budget.")
@click.option("--out", "-o", "out_path", type=click.Path(dir_okay=False), default=None,
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
        check_out_path(out_path)
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


@cli.command()
@click.argument("files", nargs=-1, type=click.Path(dir_okay=False))
@click.option("--format", "-f", "fmt", type=click.Choice(["table", "json", "github", "junit"]), default="table",
              show_default=True, help="github: workflow annotations and a job summary; junit: JUnit XML.")
@click.option("--output", "-o", "output", type=click.Path(dir_okay=False), default=None,
              help="Write the report to this file instead of stdout.")
@click.option("--baseline", type=click.Path(dir_okay=False), default=None,
              help="A baseline written by --write-baseline; use with --max-growth.")
@click.option("--max-growth", type=PERCENT, default=None,
              help="Also fail a metric that grew more than this since the baseline, e.g. 5%.")
@click.option("--write-baseline", type=click.Path(dir_okay=False), default=None,
              help="Record today's values of every budget to this file.")
@model_options
@click.option("--max-madds", type=COUNT, help="Ad hoc: a mult-adds limit for --model.")
@click.option("--max-params", type=COUNT, help="Ad hoc: a parameter limit.")
@click.option("--max-size", type=BYTES, help="Ad hoc: a stored size limit (with --dtype).")
@click.option("--max-activations", type=BYTES, help="Ad hoc: a peak activation memory limit (with --dtype).")
@click.option("--dtype", type=click.Choice(DTYPES), default="fp32", show_default=True)
@click.option("--warn-at", type=PERCENT, default=None, help="Ad hoc: warn above this share of a limit, e.g. 90%.")
@click.pass_context
def check(ctx, files, fmt, output, baseline, max_growth, write_baseline, model, alpha, resolution, rho, classes,
          max_madds, max_params, max_size, max_activations, dtype, warn_at):
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

    ad_hoc = [(metric, limit) for metric, limit in (("madds", max_madds), ("params", max_params),
                                                     ("size", max_size), ("activations", max_activations))
              if limit is not None]
    explicit = [name for name in ("model", "alpha", "resolution", "rho", "classes", "warn_at")
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
        if resolution is not None and rho is not None:
            raise click.UsageError("give either --res or --rho, not both")
        if rho is not None:
            from .expand import resolution_from_rho
            from .models import load_model

            resolution = resolution_from_rho(load_model(model), rho)
        budgets = [Budget(name=model, model=model, alpha=alpha, resolution=resolution, classes=classes, dtype=dtype,
                          limits=tuple(ad_hoc), warn_at=warn_at)]
    before = read_baseline(baseline) if baseline else None
    results = run_check(budgets, before, max_growth)
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


@cli.command()
def models():
    """List the built-in architecture specs."""
    from .models import builtin_names, load_model

    for name in builtin_names():
        spec = load_model(name)
        click.echo(f"{name:24} {spec.title}: {spec.source}")


def main(argv=None):
    cli.main(args=argv, prog_name="mnsize")
