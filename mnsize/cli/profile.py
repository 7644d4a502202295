"""mnsize profile: calibrate the latency model for this machine."""

from __future__ import annotations

import math
import os

import click

from ..bounds import MAX_THREADS
from ..errors import MnsizeError
from .base import MnsizeCommand, progress
from .options import FILE, WholeRange


def _finite(ctx, param, value):
    # FloatRange lets nan through: every comparison with it is false
    if value is not None and not math.isfinite(value):
        raise click.BadParameter(f"expected a finite number, got {value}", ctx, param)
    return value


def _written_by_profile(path: str) -> bool:
    """Whether ``path`` parses as a profile that mnsize profile wrote (whatever
    its format version); a file that merely mentions it is someone else's."""
    from ..latency import PROFILE_FORMAT
    from ..yamlio import load_yaml, read_text

    try:
        data, _ = load_yaml(read_text(path, path), path)
    except MnsizeError:
        return False
    family = PROFILE_FORMAT.split("/")[0] + "/"
    return (isinstance(data, dict) and data.get("written_by") == "mnsize profile"
            and isinstance(data.get("format"), str) and data["format"].startswith(family))


def _check_profile_out(out: str, force: bool, when: str = "") -> None:
    """Refuse a destination profile cannot write, or one it must not overwrite."""
    from ..files import check_destination

    check_destination(out)
    if not force and os.path.exists(out) and not _written_by_profile(out):
        raise MnsizeError(f"{out}: exists{when} and was not written by mnsize profile; give --force to overwrite it")


@click.command("profile", cls=MnsizeCommand)
@click.option("--out", "-o", "out", type=FILE, required=True, help="Where to write the profile (YAML).")
@click.option("--threads", type=WholeRange(1, MAX_THREADS), default=1, show_default=True)
@click.option("--seconds", type=click.FloatRange(5, 3600), default=65, show_default=True, callback=_finite,
              help="Time to spend timing networks (the whole run takes a little more).")
@click.option("--force", is_flag=True, help="Overwrite a file that mnsize profile did not write.")
@click.pass_context
def profile_command(ctx, out, threads, seconds, force):
    """Calibrate a latency profile for this machine.

    Times 112 MobileNets (V1, V2, V3 across alpha and resolution) in
    interleaved rounds and fits the per-layer cost model that `mnsize
    latency`, `fit --max-latency` and `check` use to predict latency.
    """
    import yaml

    from .. import calibrate
    from ..files import write_atomic

    _check_profile_out(out, force)  # say so before a minute of timing, not after it
    tick, close = progress("calibrating")
    try:
        data = calibrate.calibrate(threads, seconds, tick=tick)
    finally:
        close()
    text = yaml.safe_dump(data, sort_keys=False)
    _check_profile_out(out, force, when=" (it changed while timing)")
    write_atomic(out, text)
    error = data["error"]
    click.echo(f"{ctx.command_path}: wrote {out}: {error['networks']} networks; held out "
               f"{error['held_out']}: median error {error['held_out_median_error_pct']}%, "
               f"{100 * error['held_out_within_10pct']:.0f}% within 10%", err=True)
