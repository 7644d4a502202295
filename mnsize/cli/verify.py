"""mnsize verify: the symbolic counts against a real PyTorch model."""

from __future__ import annotations

import sys

import click

from ..render.base import describe
from .base import MnsizeCommand, load_network
from .options import model_options

PAPER_ALPHAS = ("1.0", "0.75", "0.5", "0.25")
PAPER_RESOLUTIONS = (224, 192, 160, 128)


@click.command("verify", cls=MnsizeCommand)
@model_options
@click.option("--device", type=click.Choice(["meta", "cpu"]), default="meta", show_default=True,
              help="meta: shapes and FLOPs without allocating anything; cpu: a real forward pass.")
@click.option("--all", "all_", is_flag=True,
              help="Every built-in spec (or the --model given) over the paper's α {1.0, 0.75, 0.5, 0.25} × "
                   "resolution {224, 192, 160, 128} grid.")
@click.option("--format", "-f", "fmt", type=click.Choice(["table", "json"]), default="table", show_default=True)
@click.pass_context
def verify_command(ctx, model, alpha, resolution, rho, classes, device, all_, fmt):
    """Build the model in PyTorch and check every layer's counts against it.

    The torch side counts independently: FlopCounterMode FLOPs / 2 for
    mult-adds, numel() for parameters, forward hooks for output shapes.
    Exit status 1 when any layer differs.

    \b
    mnsize verify --alpha 0.5 --res 160x128
    mnsize verify --all
    """
    from click.core import ParameterSource

    from ..models import builtin_names, load_spec
    from ..render.verify import render_verification, render_verifications
    from ..crosscheck import import_torch, verify_grid

    explicit = {name for name in ("alpha", "resolution", "rho")
                if ctx.get_parameter_source(name) is not ParameterSource.DEFAULT}
    if all_ and explicit:
        raise click.UsageError("--all checks the paper's grid: give no --alpha, --res or --rho with it")
    if all_:
        names = [model] if ctx.get_parameter_source("model") is not ParameterSource.DEFAULT \
            else list(builtin_names())
        specs = [load_spec(name) for name in names]
        import_torch()
        results = [v for spec in specs
                   for v in verify_grid(spec, PAPER_ALPHAS, PAPER_RESOLUTIONS, classes, device)]
        render_verifications(results, device, fmt, sys.stdout)
    else:
        network = load_network(model, alpha, resolution, rho, classes)
        import_torch()
        results = verify_grid(network.spec, [network.config.alpha], [network.config.resolution], classes, device)
        render_verification(results[0], device, fmt, sys.stdout)
    failed = [v for v in results if not v.match]
    if failed:
        sys.stdout.flush()
        for v in failed:
            layers = ", ".join(f"{c.row.layer.name} ({', '.join(c.differences)})" for c in v.mismatches)
            click.echo(f"{ctx.command_path}: mismatch: {describe(v.config)}: {layers or 'totals'}", err=True)
        ctx.exit(1)
