"""mnsize bench, profile and latency: measured and predicted latency."""

from __future__ import annotations

import math
import os
import sys

import click

from .cli import cli, resolve_resolution
from .errors import MnsizeError
from .options import FILE, WholeRange, model_options


def _progress(total_label: str):
    """A rich progress bar on a terminal's stderr, else nothing: (tick, close)."""
    if not sys.stderr.isatty():
        return None, lambda: None
    from rich.console import Console
    from rich.progress import Progress

    progress = Progress(transient=True, console=Console(stderr=True))
    progress.start()
    task = progress.add_task(total_label, total=1.0)
    return (lambda share=None: progress.advance(task, share if share is not None else 0)), progress.stop


def _config(model, alpha, resolution, rho, classes):
    from .expand import expand
    from .models import load_model

    spec = load_model(model)
    res = resolve_resolution(spec, resolution, rho)
    try:
        return spec, res, expand(spec, alpha, res, classes)
    except ValueError as exc:
        raise MnsizeError(str(exc)) from None


@cli.command()
@model_options
@click.option("--threads", type=WholeRange(1, 256), default=1, show_default=True)
@click.option("--batch", type=WholeRange(1, 4096), default=1, show_default=True)
@click.option("--runs", type=WholeRange(1, 100_000), default=50, show_default=True)
@click.option("--format", "-f", "fmt", type=click.Choice(["table", "json"]), default="table", show_default=True)
def bench(model, alpha, resolution, rho, classes, threads, batch, runs, fmt):
    """Measure the model's inference latency on this machine.

    Eval mode, torch.inference_mode, BatchNorm folded into the convolutions,
    10 warm-up runs, then --runs timed runs: median, p10, p90 and spread.
    """
    from .bench import bench as measure
    from .render import dump_json, format_alpha
    from .text import printable

    spec, res, layers = _config(model, alpha, resolution, rho, classes)
    tick, close = _progress("timing")
    try:
        timing = measure(layers, (spec.in_channels, *res), threads, batch, runs,
                         tick=(lambda: tick(1 / runs)) if tick else None)
    finally:
        close()
    data = {"schema": "mnsize.bench/1", "model": spec.name, "alpha": float(alpha), "resolution": list(res),
            "threads": threads, "batch": batch, "median_ms": round(timing.median_ms, 4),
            "p10_ms": round(timing.p10_ms, 4), "p90_ms": round(timing.p90_ms, 4), "runs": timing.runs}
    if fmt == "json":
        dump_json(data, sys.stdout)
    else:
        click.echo(f"{printable(spec.name)} α {format_alpha(alpha)} {res[0]}×{res[1]}, batch {batch}, "
                   f"{threads} thread(s): median {timing.median_ms:.3f} ms (p10 {timing.p10_ms:.3f}, "
                   f"p90 {timing.p90_ms:.3f}; "
                   f"spread {100 * timing.spread:.1f}% over {timing.runs} runs)")


def _finite(ctx, param, value):
    # FloatRange lets nan through: every comparison with it is false
    if value is not None and not math.isfinite(value):
        raise click.BadParameter(f"expected a finite number, got {value}", ctx, param)
    return value


def _written_by_profile(path: str) -> bool:
    """Whether ``path`` parses as a profile that mnsize profile wrote (whatever
    its format version); a file that merely mentions it is someone else's."""
    from .latency import PROFILE_FORMAT
    from .yamlio import load_yaml, read_text

    try:
        data, _ = load_yaml(read_text(path, path), path)
    except MnsizeError:
        return False
    family = PROFILE_FORMAT.split("/")[0] + "/"
    return (isinstance(data, dict) and data.get("written_by") == "mnsize profile"
            and isinstance(data.get("format"), str) and data["format"].startswith(family))


def _check_profile_out(out: str, force: bool, when: str = "") -> None:
    """Refuse a destination profile cannot write, or one it must not overwrite."""
    from .files import check_destination

    check_destination(out)
    if not force and os.path.exists(out) and not _written_by_profile(out):
        raise MnsizeError(f"{out}: exists{when} and was not written by mnsize profile; give --force to overwrite it")


@cli.command()
@click.option("--out", "-o", "out", type=FILE, required=True, help="Where to write the profile (YAML).")
@click.option("--threads", type=WholeRange(1, 256), default=1, show_default=True)
@click.option("--seconds", type=click.FloatRange(5, 3600), default=65, show_default=True, callback=_finite,
              help="Time to spend timing networks (the whole run takes a little more).")
@click.option("--force", is_flag=True, help="Overwrite a file that mnsize profile did not write.")
@click.pass_context
def profile(ctx, out, threads, seconds, force):
    """Calibrate a latency profile for this machine.

    Times 112 MobileNets (V1, V2, V3 across alpha and resolution) in
    interleaved rounds and fits the per-layer cost model that `mnsize
    latency`, `fit --max-latency` and `check` use to predict latency.
    """
    import yaml

    from . import bench
    from .files import write_atomic

    _check_profile_out(out, force)  # say so before a minute of timing, not after it
    tick, close = _progress("calibrating")
    try:
        data = bench.calibrate(threads, seconds, tick=tick)
    finally:
        close()
    text = yaml.safe_dump(data, sort_keys=False)
    _check_profile_out(out, force, when=" (it changed while timing)")
    write_atomic(out, text)
    error = data["error"]
    click.echo(f"{ctx.command_path}: wrote {out}: {error['networks']} networks; held out "
               f"{error['held_out']}: median error {error['held_out_median_error_pct']}%, "
               f"{100 * error['held_out_within_10pct']:.0f}% within 10%", err=True)


@cli.command()
@click.option("--profile", "profile_path", type=FILE, required=True, help="A profile written by mnsize profile.")
@model_options
@click.option("--format", "-f", "fmt", type=click.Choice(["table", "json"]), default="table", show_default=True)
def latency(profile_path, model, alpha, resolution, rho, classes, fmt):
    """Predicted latency, per layer and in total, from a device profile (no torch)."""
    from .costs import count
    from .expand import deployed
    from .latency import load_profile
    from .render import Grid, describe, dump_json, write_grid

    device_profile = load_profile(profile_path)
    spec, res, layers = _config(model, alpha, resolution, rho, classes)
    total, per_layer = device_profile.predict(count(deployed(layers)))
    device_profile.microseconds(total)  # refuses a profile that predicts no time at all
    if fmt == "json":
        dump_json({"schema": "mnsize.latency/1", "model": spec.name, "alpha": float(alpha),
                   "resolution": list(res), "predicted_ms": round(total, 4),
                   "layers": [{"name": name, "predicted_ms": round(ms, 5)} for name, ms in per_layer]}, sys.stdout)
        return
    from .expand import Config

    config = Config(spec.name, alpha, res, classes or spec.classes)
    device = device_profile.device
    write_grid(Grid(
        title="predicted latency",
        headers=["layer", "ms", "% of total"], right={1, 2},
        rows=[[name, f"{ms:.4f}", f"{100 * ms / total:.1f}%" if total else "-"] for name, ms in per_layer],
        csv_headers=[], csv_rows=[], totals=["total (with the network offset)", f"{total:.3f}", "100.0%"],
        notes=[f"{describe(config)}, BatchNorm folded.",
               f"Profile {profile_path}: {device.get('cpu', '?')}, {device.get('threads', '?')} thread(s), "
               f"torch {device.get('torch', '?')}, {device.get('date', '?')}."]), "table", sys.stdout)
