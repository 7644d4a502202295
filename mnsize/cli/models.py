"""mnsize models: the built-in architecture specs."""

from __future__ import annotations

import click

from .base import MnsizeCommand


@click.command("models", cls=MnsizeCommand)
def models_command():
    """List the built-in architecture specs: each one's name, the network it
    follows (the paper's table or a framework's code: the spec's framework)
    and its title and source."""
    from ..models import builtin_names, load_spec

    specs = {name: load_spec(name) for name in builtin_names()}
    width = max(map(len, specs), default=0)
    follows = {name: spec.framework or "-" for name, spec in specs.items()}
    follows_width = max(map(len, follows.values()), default=0)
    for name, spec in specs.items():
        click.echo(f"{name:{width}}  {follows[name]:{follows_width}}  {spec.title}: {spec.source}")
