"""The mnsize command line: parse options, call one function, render, map
errors to exit codes (0 ok, 1 a check the user asked for failed, 2 bad input
or a tool error). Thin by design: the work is in the modules below it."""

from __future__ import annotations

import dataclasses
import os
import sys

import click

from . import __version__
from .errors import MnsizeError
from .options import convention_option, model_options
from .render import FORMATS


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


def resolve_resolution(spec, resolution, rho):
    """The input size from --res or --rho (never both), else the spec's default."""
    from .expand import resolution_from_rho

    if resolution is not None and rho is not None:
        raise click.UsageError("give either --res or --rho, not both")
    if rho is not None:
        return resolution_from_rho(spec, rho)
    return resolution or spec.resolution


def _load(model, alpha, resolution, rho, classes):
    """Load and expand a spec from the shared model options."""
    from .expand import Config, expand
    from .models import load_model

    spec = load_model(model)
    config = Config(model=spec.name, alpha=alpha, resolution=resolve_resolution(spec, resolution, rho),
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
@convention_option
def table(model, alpha, resolution, rho, classes, fmt, by_kind, standard, convention):
    """Every layer's shapes, mult-adds and parameters, with exact totals.

    \b
    mnsize table --alpha 0.5 --res 128
    mnsize table --model configs/mobilenet_v1.yaml --format json
    """
    from .costs import count
    from .render import render_report

    if by_kind and standard:
        raise click.UsageError("give either --by-kind or --standard, not both")
    if standard and convention.name != "paper":
        raise click.UsageError("--standard compares the paper's counts: give no --convention with it")
    config, layers = _load(model, alpha, resolution, rho, classes)
    config = dataclasses.replace(config, convention=convention.name)
    view = "by_kind" if by_kind else "standard" if standard else "layers"
    render_report(config, count(layers, convention), view, fmt, sys.stdout)


@cli.command()
@model_options
@click.option("--format", "-f", "fmt", type=click.Choice(["table", "json", "markdown"]), default="table",
              show_default=True)
def explain(model, alpha, resolution, rho, classes, fmt):
    """Why counters disagree: the network counted by every convention.

    One row per convention (the paper, PyTorch's FlopCounterMode, Keras,
    ptflops, thop, fvcore, torchinfo) with the figure that tool prints and
    what makes it differ from the paper, quantified.
    """
    from .conventions import explain as explain_all
    from .render_explain import render_explanations

    config, layers = _load(model, alpha, resolution, rho, classes)
    render_explanations(config, explain_all(layers), fmt, sys.stdout)


@cli.command()
def models():
    """List the built-in architecture specs."""
    from .models import builtin_names, load_model

    for name in builtin_names():
        spec = load_model(name)
        click.echo(f"{name:24} {spec.title}: {spec.source}")


def main(argv=None):
    cli.main(args=argv, prog_name="mnsize")


# the other commands register themselves on the group
from . import cli_check, cli_latency, cli_search, cli_verify  # noqa: E402, F401
