"""mnsize check: the budget gate for CI."""

from __future__ import annotations

import os
import sys

import click

from ..errors import FileError, MnsizeError
from ..metrics import METRICS
from ..render.check import FORMATS
from ..units import DTYPES
from .base import MnsizeCommand, error_message, note_keras, resolve_resolution, warn, warn_if_poor
from .options import FILE, PERCENT, convention_option, given_limits, limit_options, model_options

# how a command ends that is no error of the tool's: an exit status, ^C, a reader gone
_NOT_ERRORS = (click.exceptions.Exit, click.exceptions.Abort, BrokenPipeError)


class CheckCommand(MnsizeCommand):
    """A bad option is reported the way the chosen --format reports any tool
    error (see _report_error), though it is found before the command runs."""

    def parse_args(self, ctx, args):
        given = list(args)  # click's parser consumes the list
        try:
            return super().parse_args(ctx, args)
        except _NOT_ERRORS:
            raise
        except Exception as exc:
            _report_error(ctx.params.get("fmt") or _format_in(given), exc)
            raise


def _format_in(args: list[str]) -> str | None:
    """The --format named on a command line that click could not parse."""
    found = None
    words = iter(args)
    for word in words:
        if word == "--":
            break
        if word in ("--format", "-f"):
            found = next(words, None)
        elif word.startswith("--format="):
            found = word.split("=", 1)[1]
        elif word.startswith("-f") and not word.startswith("--"):
            found = word[2:]
    return found if found in FORMATS else None


def _report_error(fmt: str | None, exc: Exception) -> None:
    """With --format github or json a tool error is also put on stdout, where
    a CI job reads the results: an error annotation at the file and line, or
    a JSON object. The one line on stderr and exit status 2 follow as for any
    error."""
    if fmt not in ("github", "json"):
        return
    from ..render.base import dump_json
    from ..render.check import annotation, error_json

    # the words of the line on stderr
    text = exc.format_message() if isinstance(exc, click.ClickException) else error_message(exc)
    text = " ".join(text.split())
    file, line = (exc.file, exc.line) if isinstance(exc, FileError) else (None, None)
    try:
        if fmt == "json":
            dump_json(error_json(text, file, line), sys.stdout)
        else:
            sys.stdout.write(annotation("error", text, title="mnsize check", file=file, line=line,
                                        workspace=os.environ.get("GITHUB_WORKSPACE")))
        sys.stdout.flush()
    except Exception:  # stdout closed or full: the line on stderr still says it all
        pass


@click.command("check", cls=CheckCommand)
@click.argument("files", nargs=-1, type=FILE)
@click.option("--format", "-f", "fmt", type=click.Choice(FORMATS), default="table", show_default=True,
              help="github: workflow annotations; junit: JUnit XML. With github or json, a tool error is also "
                   "reported on stdout (an annotation, or {\"passed\": false, \"error\": ...}).")
@click.option("--output", "-o", "output", type=FILE, default=None,
              help="Write the report to this file instead of stdout (never over an input of the run).")
@click.option("--baseline", type=FILE, default=None,
              help="A baseline written by --write-baseline: also fail a metric that grew since then by more "
                   "than --max-growth (none allowed without it).")
@click.option("--max-growth", type=PERCENT, default=None,
              help="With --baseline: the growth allowed since the baseline, e.g. 5%.  [default: 0%]")
@click.option("--write-baseline", type=FILE, default=None,
              help="Record today's values of every budget to this file.")
@model_options
@limit_options(*METRICS, help_prefix="Ad hoc: ")
@click.option("--profile", "profile_path", type=FILE, default=None, help="Ad hoc: the latency profile to predict with.")
@click.option("--dtype", type=click.Choice(DTYPES), default="fp32", show_default=True)
@click.option("--warn-at", type=PERCENT, default=None, help="Ad hoc: warn above this share of a limit, e.g. 90%.")
@convention_option
@click.pass_context
def check_command(ctx, fmt, **options):
    """The budget gate for CI: exit 1 when any model is over a budget.

    Checks the budgets files given (YAML, see docs/ci.md), or one ad hoc
    budget from --model and the --max-* options. Exit status 0 when every
    budget holds (warnings included), 1 when any is exceeded or grew more
    than allowed since --baseline, 2 for bad input. A limit of 0 means the
    value must be 0. When GITHUB_STEP_SUMMARY is set, a Markdown table is
    appended to it, whatever the format; a summary that cannot be written
    is a warning, never a failure.

    \b
    mnsize check configs/budgets.yaml
    mnsize check configs/budgets.yaml --format github
    mnsize check configs/budgets.yaml --baseline baseline.json --max-growth 5%
    mnsize check --model mobilenet_v1 --alpha 0.5 --max-madds 150M
    """
    try:
        _gate(ctx, fmt=fmt, **options)
    except _NOT_ERRORS:
        raise
    except Exception as exc:
        _report_error(fmt, exc)
        raise


def _gate(ctx, files, fmt, output, baseline, max_growth, write_baseline, model, alpha, resolution, rho, classes,
          profile_path, dtype, warn_at, convention, **options):
    from click.core import ParameterSource

    from ..budgets import Budget, load_budgets
    from ..gate import check_budgets
    from ..files import check_destination
    from ..models import is_onnx, load_spec, spec_path

    ad_hoc = given_limits(options)
    if ad_hoc.get("latency") is not None and profile_path is None:
        raise click.UsageError("--max-latency needs --profile (write one with mnsize profile)")
    explicit = [name for name in ("model", "alpha", "resolution", "rho", "classes", "warn_at", "profile_path",
                                  "dtype") if ctx.get_parameter_source(name) is not ParameterSource.DEFAULT]
    if files and (ad_hoc or explicit):
        raise click.UsageError("give budgets files or an ad hoc budget (--model ... --max-madds ...), not both")
    if not files and not ad_hoc:
        raise click.UsageError("give a budgets file, or --model with at least one --max-madds, --max-params, "
                               "--max-size or --max-activations")
    if max_growth is not None and baseline is None:
        raise click.UsageError("--max-growth needs --baseline (a file written by --write-baseline)")
    if files:
        budgets = load_budgets(*files)
    else:
        if rho is not None:
            resolution = resolve_resolution(model, resolution, rho)
        budgets = [Budget(name=model, model=model, alpha=alpha, resolution=resolution, classes=classes, dtype=dtype,
                          limits=ad_hoc, warn_at=warn_at, profile=profile_path)]

    # every destination, before any work: never over an input, never two in one file
    specs = [spec_path(b.model) for b in budgets]
    inputs = [*files, baseline, *specs, *(b.profile for b in budgets)]
    if output:
        check_destination(output, inputs=inputs, outputs=[write_baseline], what="report")
    if write_baseline:
        check_destination(write_baseline, inputs=inputs, outputs=[output], what="baseline")
    summary = _summary_destination(ctx, inputs, [output, write_baseline])

    from ..baseline import baseline_json, read_baseline

    before = read_baseline(baseline, convention) if baseline else None
    read: dict = {}  # specs and profiles, read once for the check and the baseline
    results = check_budgets(budgets, before, max_growth, convention, read)
    for key, device_profile in read.items():  # each poor profile once, however many budgets use it
        if isinstance(key, tuple) and key[0] == "profile":
            warn_if_poor(ctx, device_profile)
    _write_outputs(ctx, results, budgets, fmt, output, write_baseline, summary,
                   lambda b: baseline_json(b, convention, read))
    for model in dict.fromkeys(b.model for b in budgets):  # once per model, however many budgets name it
        note_keras(ctx, convention, None if is_onnx(model) else read.get(model) or load_spec(model), model)
    failed = [r for r in results if r.status == "fail"]
    if failed:
        from ..render.check import message
        from ..text import printable

        sys.stdout.flush()
        for r in failed:
            where = f"{printable(r.budget.file)}:{r.budget.line_of(r.metric)}: " if r.budget.file else ""
            what = "over budget" if r.over_limit else "over the growth limit"
            click.echo(f"{ctx.command_path}: {what}: {where}{message(r)}", err=True)
        ctx.exit(1)


def _summary_destination(ctx, inputs: list, outputs: list) -> str | None:
    """$GITHUB_STEP_SUMMARY when it is set and can be written; else None,
    with a warning: the job summary is an extra that never decides the
    verdict."""
    from ..files import check_destination

    path = os.environ.get("GITHUB_STEP_SUMMARY")
    if not path:
        return None
    try:
        check_destination(path, inputs=inputs, outputs=outputs, what="job summary")
    except MnsizeError as exc:
        warn(ctx, f"GITHUB_STEP_SUMMARY: {exc}; no job summary written")
        return None
    return path


def _write_outputs(ctx, results, budgets, fmt, output, write_baseline, summary, baseline_json) -> None:
    """The baseline, the report (to --output or stdout) and the job summary,
    each file replaced or extended atomically."""
    import io
    import json

    from ..files import append_atomic, write_atomic
    from ..render.check import render_check, summary_markdown
    from ..text import printable, utf8_safe

    if write_baseline:
        write_atomic(write_baseline, json.dumps(baseline_json(budgets), indent=2, allow_nan=False) + "\n")
        click.echo(f"{ctx.command_path}: wrote the baseline of {len(budgets)} budgets to {printable(write_baseline)}",
                   err=True)
    workspace = os.environ.get("GITHUB_WORKSPACE") or None
    if output:
        report = io.StringIO()
        render_check(results, fmt, report, workspace)
        write_atomic(output, utf8_safe(report.getvalue()))
    else:
        # straight to stdout: a terminal gets the table's colours and its width
        render_check(results, fmt, sys.stdout, workspace)
    if summary:
        try:
            append_atomic(summary, utf8_safe(summary_markdown(results)))
        except (MnsizeError, OSError) as exc:
            warn(ctx, f"GITHUB_STEP_SUMMARY: {exc}; no job summary written")

