"""mnsize profile: calibrate the latency model for this machine."""

from __future__ import annotations

import os

import click

from ..bounds import MAX_THREADS
from ..errors import MnsizeError
from ..latency import CALIBRATION_SECONDS, QUALITY_WITHIN_10PCT
from ..runtimes import RUNTIMES
from ..text import printable
from .base import MnsizeCommand, progress, warn
from .options import FILE, WholeRange, finite


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
@click.option("--out", "-o", "out", type=FILE, default=None, help="Where to write the profile (YAML).")
@click.option("--runtime", type=click.Choice(RUNTIMES), default=None,
              help="The runtime to profile.  [default: torch; with --from, the one --export named]")
@click.option("--threads", type=WholeRange(1, MAX_THREADS), default=1, show_default=True)
@click.option("--seconds", type=click.FloatRange(5, 3600), default=CALIBRATION_SECONDS, show_default=True,
              callback=finite, help="Time the whole run may take: timing, building and fitting.")
@click.option("--export", "export_dir", type=click.Path(file_okay=False), default=None,
              help="Write the calibration networks as ONNX files and manifest.csv to this folder, to time "
                   "on another device; no profile is written.")
@click.option("--from", "timings", type=FILE, default=None,
              help="Fit the profile to timings measured elsewhere: a CSV of file,median_ms.")
@click.option("--manifest", type=FILE, default=None,
              help="With --from: the manifest.csv of the export.  [default: the one beside the timings]")
@click.option("--lanes", type=click.Choice(["4", "8", "16"]), default="8", show_default=True,
              help="With --from: fp32 vector lanes of the device's CPU (4 NEON, 8 AVX2, 16 AVX-512).")
@click.option("--force", is_flag=True, help="Overwrite a file that mnsize profile did not write, or "
                                              "export into a folder that is not empty.")
@click.pass_context
def profile_command(ctx, out, runtime, threads, seconds, export_dir, timings, manifest, lanes, force):
    """Calibrate a latency profile for this machine.

    Times 112 MobileNets (V1, V2, V3 across alpha and resolution) in
    interleaved rounds and fits the per-layer cost model that `mnsize
    latency`, `fit --max-latency` and `check` use to predict latency.
    For a device mnsize does not run on, --export writes the networks as
    ONNX files, and --from fits a profile to their timings.

    \b
    mnsize profile --out p.yaml --runtime onnxruntime
    mnsize profile --export nets/ --runtime onnxruntime
    mnsize profile --from nets/timings.csv --out p.yaml
    """
    import yaml

    from ..files import write_atomic

    if export_dir is not None:
        if out is not None or timings is not None:
            raise click.UsageError("--export writes the networks only: give it without --out and --from")
        return _export(ctx, export_dir, runtime or "torch", force)
    if out is None:
        raise click.UsageError("Missing option '--out' / '-o'.")
    if manifest is not None and timings is None:
        raise click.UsageError("--manifest goes with --from")
    _check_profile_out(out, force)  # say so before a minute of timing, not after it
    if timings is not None:
        data = _from_timings(out, timings, manifest, runtime, int(lanes))
    else:
        data = _calibrate(threads, seconds, runtime or "torch")
    text = yaml.safe_dump(data, sort_keys=False)
    _check_profile_out(out, force, when=" (it changed while timing)")
    write_atomic(out, text)
    error, quality = data["error"], data.get("quality")
    click.echo(f"{ctx.command_path}: wrote {printable(out)}: {data.get('runtime', {}).get('name', 'torch')}, "
               f"{error['networks']} networks; held out {error['held_out']}: median error "
               f"{error['held_out_median_error_pct']}%, {100 * error['held_out_within_10pct']:.0f}% within 10%: "
               f"quality {quality}", err=True)
    if quality == "poor":
        warn(ctx, f"a poor profile: fewer than {100 * QUALITY_WITHIN_10PCT:.0f}% of held-out networks within "
                  "±10%; time it again on a quieter machine or with more --seconds")


def _calibrate(threads: int, seconds: float, runtime: str) -> dict:
    from .. import calibrate

    tick, close = progress("calibrating")
    try:
        return calibrate.calibrate(threads, seconds, tick=tick, runtime=runtime)
    finally:
        close()


def _from_timings(out: str, timings: str, manifest: str | None, runtime: str | None, lanes: int) -> dict:
    from .. import calibrate
    from ..files import check_destination

    manifest = manifest or os.path.join(os.path.dirname(timings), calibrate.MANIFEST)
    check_destination(out, inputs=[timings, manifest], what="profile")
    files, exported_for = calibrate.read_manifest(manifest)
    runtime = runtime or exported_for or "torch"
    timed = calibrate.read_timings(timings, files, manifest, runtime)
    return calibrate.profile_from_timings(timed, runtime, lanes, timings)


def _export(ctx, folder: str, runtime: str, force: bool) -> None:
    from .. import calibrate

    if os.path.exists(folder) and not os.path.isdir(folder):
        raise MnsizeError(f"{folder}: not a folder")
    if os.path.isdir(folder) and os.listdir(folder) and not force:
        raise MnsizeError(f"{folder}: the folder is not empty; give --force to write into it")
    os.makedirs(folder, exist_ok=True)
    tick, close = progress("exporting")
    try:
        written = calibrate.export_networks(folder, runtime, tick=tick)
    finally:
        close()
    click.echo(f"{ctx.command_path}: wrote {written} ONNX networks and {calibrate.MANIFEST} to {printable(folder)}; "
               f"time each in {runtime} and give the medians (file,median_ms) to --from", err=True)
