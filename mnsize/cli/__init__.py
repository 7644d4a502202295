"""The mnsize command line: one click group, one module per command.

Each command parses its options, calls the engine, hands the result to
mnsize.render and maps errors to exit codes (mnsize.cli.base). Command
modules never import this package's group: it imports them and registers
each with ``add_command``, so imports run one way.
"""

from __future__ import annotations

import click

from .. import __version__
from .base import MnsizeGroup
from .bench import bench_command
from .check import check_command
from .explain import explain_command
from .export import export_command
from .fit import fit_command
from .grid import grid_command
from .import_ import import_command
from .latency import latency_command
from .models import models_command
from .plot import plot_command
from .profile import profile_command
from .table import table_command
from .verify import verify_command


@click.group("mnsize", cls=MnsizeGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="mnsize")
def cli():
    """Exact mult-adds, parameters and sizing for MobileNets, from YAML layer specs."""


for command in (table_command, explain_command, models_command, verify_command, import_command, fit_command, grid_command,
                plot_command, check_command, bench_command, profile_command, latency_command,
                export_command):
    cli.add_command(command)


def main(argv=None):
    cli.main(args=argv, prog_name="mnsize")
