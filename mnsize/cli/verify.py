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
@click.option("--against", metavar="FILE.onnx|MODULE:CALLABLE",
              help="The real model the spec describes: an ONNX file, or a PyTorch module built by calling "
                   "package.module:callable (this imports and runs that code). Compared layer by layer.")
@click.option("--kwargs", metavar="TEXT", help="Keyword arguments for --against's callable: 'width_mult=0.75'.")
@click.option("--format", "-f", "fmt", type=click.Choice(["table", "json"]), default="table", show_default=True)
@click.pass_context
def verify_command(ctx, model, alpha, resolution, rho, classes, device, all_, against, kwargs, fmt):
    """Check every layer's counts against a real model.

    By default the spec is built in PyTorch and counted independently:
    FlopCounterMode FLOPs / 2 for mult-adds, numel() for parameters, forward
    hooks for output shapes. With --against, the spec is compared with the
    model it describes, an ONNX file or a PyTorch module, at that model's α
    (--alpha, else the callable's width_mult) and resolution. Exit status 1
    when any layer differs, naming the first.

    \b
    mnsize verify --alpha 0.5 --res 160x128
    mnsize verify --all
    mnsize verify --model my_net.yaml --against my_net.onnx
    mnsize verify --model my_net.yaml --against my_pkg.models:my_net --kwargs 'width_mult=0.75'
    """
    from click.core import ParameterSource

    from ..models import builtin_names, load_spec
    from ..render.verify import render_verification, render_verifications
    from ..crosscheck import import_torch, verify_grid

    explicit = {name for name in ("alpha", "resolution", "rho")
                if ctx.get_parameter_source(name) is not ParameterSource.DEFAULT}
    if all_ and explicit:
        raise click.UsageError("--all checks the paper's grid: give no --alpha, --res or --rho with it")
    if kwargs is not None and against is None:
        raise click.UsageError("--kwargs is for --against's callable: give --against too")
    if against is not None:
        if all_ or rho is not None:
            raise click.UsageError("--against compares one configuration: give no --all or --rho with it")
        _verify_against(ctx, model, alpha if "alpha" in explicit else None, resolution, classes, against, kwargs,
                        fmt)
        return
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


def _verify_against(ctx, model, alpha, resolution, classes, against, kwargs, fmt):
    import dataclasses

    from ..against import compare, source_alpha
    from ..sources import is_callable_target, read_atoms
    from ..render.verify import render_comparison

    network = load_network(model, 1, resolution, None, classes)
    spec = network.spec
    atoms, measured = read_atoms(against, resolution, kwargs, spec.in_channels, default=spec.resolution)
    config = dataclasses.replace(network.config, alpha=source_alpha(alpha, kwargs), resolution=measured)
    counter = "FlopCounterMode FLOPs / 2 and numel() per module" if is_callable_target(against) else \
        "mnsize's ONNX counter"
    comparison = compare(spec, config, atoms, against, counter)
    render_comparison(comparison, fmt, sys.stdout)
    if not comparison.match:
        sys.stdout.flush()
        click.echo(f"{ctx.command_path}: mismatch: {comparison.mismatches[0].describe(against)}", err=True)
        ctx.exit(1)
