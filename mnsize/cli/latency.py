"""mnsize latency: predicted latency from a device profile (no torch)."""

from __future__ import annotations

import sys

import click

from .base import MnsizeCommand, load_network
from .options import FILE, model_options


@click.command("latency", cls=MnsizeCommand)
@click.option("--profile", "profile_path", type=FILE, required=True, help="A profile written by mnsize profile.")
@model_options
@click.option("--format", "-f", "fmt", type=click.Choice(["table", "json"]), default="table", show_default=True)
def latency_command(profile_path, model, alpha, resolution, rho, classes, fmt):
    """Predicted latency, per layer and in total, from a device profile (no torch)."""
    from ..costs import count
    from ..expand import deployed
    from ..latency import load_profile
    from ..render.latency import render_prediction

    device_profile = load_profile(profile_path)
    network = load_network(model, alpha, resolution, rho, classes)
    total, per_layer = device_profile.predict(count(deployed(network.layers)))
    device_profile.microseconds(total)  # refuses a profile that predicts no time at all
    render_prediction(network.config, profile_path, device_profile.device, total, per_layer, fmt, sys.stdout)
