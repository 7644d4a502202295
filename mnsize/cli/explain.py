"""mnsize explain: why FLOP counters disagree about one network."""

from __future__ import annotations

import sys

import click

from .base import MnsizeCommand, load_network
from .options import model_options


@click.command("explain", cls=MnsizeCommand)
@model_options
@click.option("--format", "-f", "fmt", type=click.Choice(["table", "json", "markdown"]), default="table",
              show_default=True)
def explain_command(model, alpha, resolution, rho, classes, fmt):
    """Why counters disagree: the network counted by every convention.

    One row per convention (the paper, PyTorch's FlopCounterMode, Keras,
    ptflops, thop, fvcore, torchinfo) with the figure that tool prints and
    what makes it differ from the paper, quantified.
    """
    from ..conventions import explain
    from ..render.explain import render_explanations

    network = load_network(model, alpha, resolution, rho, classes)
    render_explanations(network.config, explain(network.layers), fmt, sys.stdout)
