"""mnsize models: the built-in architecture specs."""

from __future__ import annotations

import click

from .base import MnsizeCommand


@click.command("models", cls=MnsizeCommand)
def models_command():
    """List the built-in architecture specs."""
    from ..models import builtin_names, load_spec

    for name in builtin_names():
        spec = load_spec(name)
        click.echo(f"{name:24} {spec.title}: {spec.source}")
