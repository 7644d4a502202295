"""mnsize table: every layer's shapes, mult-adds and parameters."""

from __future__ import annotations

import dataclasses
import sys

import click

from ..render.report import FORMATS
from .base import MnsizeCommand, load_network, note_keras
from .options import convention_option, model_options


@click.command("table", cls=MnsizeCommand)
@model_options
@click.option("--format", "-f", "fmt", type=click.Choice(FORMATS), default="table", show_default=True)
@click.option("--by-kind", is_flag=True, help="Mult-adds and params per layer type (the paper's Table 2).")
@click.option("--standard", is_flag=True,
              help="Each separable pair against a standard conv with the same input and output.")
@convention_option
@click.pass_context
def table_command(ctx, model, alpha, resolution, rho, classes, fmt, by_kind, standard, convention):
    """Every layer's shapes, mult-adds and parameters, with exact totals.

    \b
    mnsize table --alpha 0.5 --res 128
    mnsize table --model configs/mobilenet_v1.yaml --format json
    """
    from ..costs import count
    from ..render.report import render_report

    if by_kind and standard:
        raise click.UsageError("give either --by-kind or --standard, not both")
    if standard and convention.name != "paper":
        raise click.UsageError("--standard compares the paper's counts: give no --convention with it")
    network = load_network(model, alpha, resolution, rho, classes)
    config = dataclasses.replace(network.config, convention=convention.name)
    view = "by_kind" if by_kind else "standard" if standard else "layers"
    render_report(config, count(network.layers, convention), view, fmt, sys.stdout)
    note_keras(ctx, convention, network.spec, model)
