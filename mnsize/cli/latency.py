"""mnsize latency: predicted latency from a device profile (no torch)."""

from __future__ import annotations

import sys

import click

from ..errors import MnsizeError
from ..runtimes import RUNTIMES
from ..text import printable
from .base import MnsizeCommand, load_network, warn_if_poor
from .options import FILE, model_options


@click.command("latency", cls=MnsizeCommand)
@click.option("--profile", "profile_path", type=FILE, required=True, help="A profile written by mnsize profile.")
@click.option("--runtime", type=click.Choice(RUNTIMES), default=None,
              help="Refuse a profile made for another runtime.  [default: the profile's]")
@model_options
@click.option("--format", "-f", "fmt", type=click.Choice(["table", "json"]), default="table", show_default=True)
@click.pass_context
def latency_command(ctx, profile_path, runtime, model, alpha, resolution, rho, classes, fmt):
    """Predicted latency, per layer and in total, from a device profile (no torch)."""
    from ..costs import count
    from ..expand import deployed
    from ..latency import load_profile
    from ..render.latency import render_prediction

    device_profile = load_profile(profile_path)
    if runtime is not None and device_profile.runtime != runtime:
        raise MnsizeError(f"{printable(profile_path)}: a profile made for {device_profile.runtime}, not for "
                          f"--runtime {runtime} (write one with mnsize profile --runtime {runtime})")
    warn_if_poor(ctx, device_profile)
    network = load_network(model, alpha, resolution, rho, classes)
    total, per_layer = device_profile.predict(count(deployed(network.layers)))
    device_profile.microseconds(total)  # refuses a profile that predicts no time at all
    render_prediction(network.config, profile_path, device_profile.device, total, per_layer, fmt, sys.stdout)
