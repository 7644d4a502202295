"""mnsize bench: measured inference latency on this machine."""

from __future__ import annotations

import sys

import click

from ..bounds import MAX_THREADS
from ..runtimes import RUNTIMES
from .base import MnsizeCommand, load_network, progress, warn
from .options import WholeRange, finite, model_options

#: a spread of the runs above this is worth a warning: the machine was busy or drifting
SPREAD_WARNING = 0.10


@click.command("bench", cls=MnsizeCommand)
@model_options
@click.option("--runtime", type=click.Choice(RUNTIMES), default="torch", show_default=True,
              help="What runs the network: eager PyTorch, or its ONNX graph in onnxruntime or OpenVINO.")
@click.option("--threads", type=WholeRange(1, MAX_THREADS), default=1, show_default=True)
@click.option("--batch", type=WholeRange(1, 4096), default=1, show_default=True)
@click.option("--seconds", type=click.FloatRange(0.1, 600), default=2, show_default=True, callback=finite,
              help="Time spent on timed runs, after the warm-up.")
@click.option("--runs", type=WholeRange(1, 100_000), default=None,
              help="A fixed number of timed runs instead of --seconds.")
@click.option("--format", "-f", "fmt", type=click.Choice(["table", "json"]), default="table", show_default=True)
@click.pass_context
def bench_command(ctx, model, alpha, resolution, rho, classes, runtime, threads, batch, seconds, runs, fmt):
    """Measure the model's inference latency on this machine.

    BatchNorm folded into the convolutions; three builds of the network,
    each warmed up (10 runs and 0.2 s), timed in turns for --seconds in 5
    rounds (or exactly --runs). The latency is the runs' p10, the network's
    own cost on a shared machine; the median, p90, their spread and the
    spread between the rounds' medians come beside it.
    """
    from ..bench import time_layers
    from ..render.latency import render_timing
    from ..runtimes import runtime_version

    network = load_network(model, alpha, resolution, rho, classes)
    version = runtime_version(runtime)
    tick, close = progress("timing")
    try:
        timing = time_layers(network.layers, (network.spec.in_channels, *network.config.resolution), threads,
                             batch, runs, tick=tick, runtime=runtime, seconds=seconds)
    finally:
        close()
    render_timing(network.config, threads, batch, timing, fmt, sys.stdout, runtime=runtime,
                  runtime_version=version, seconds=seconds if runs is None else None)
    if timing.spread > SPREAD_WARNING:
        warn(ctx, f"the runs spread over {100 * timing.spread:.1f}% of the median (p10 to p90); the machine "
                  "may be busy")
