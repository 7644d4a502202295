"""mnsize bench: measured inference latency on this machine."""

from __future__ import annotations

import sys

import click

from ..bounds import MAX_THREADS
from .base import MnsizeCommand, load_network, progress
from .options import WholeRange, model_options


@click.command("bench", cls=MnsizeCommand)
@model_options
@click.option("--threads", type=WholeRange(1, MAX_THREADS), default=1, show_default=True)
@click.option("--batch", type=WholeRange(1, 4096), default=1, show_default=True)
@click.option("--runs", type=WholeRange(1, 100_000), default=50, show_default=True)
@click.option("--format", "-f", "fmt", type=click.Choice(["table", "json"]), default="table", show_default=True)
def bench_command(model, alpha, resolution, rho, classes, threads, batch, runs, fmt):
    """Measure the model's inference latency on this machine.

    Eval mode, torch.inference_mode, BatchNorm folded into the convolutions,
    10 warm-up runs, then --runs timed runs: median, p10, p90 and spread.
    """
    from ..bench import time_layers
    from ..render.latency import render_timing

    network = load_network(model, alpha, resolution, rho, classes)
    tick, close = progress("timing")
    try:
        timing = time_layers(network.layers, (network.spec.in_channels, *network.config.resolution), threads,
                             batch, runs, tick=(lambda: tick(1 / runs)) if tick else None)
    finally:
        close()
    render_timing(network.config, threads, batch, timing, fmt, sys.stdout)
