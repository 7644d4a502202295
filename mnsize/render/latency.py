"""Latency output: a measured timing (`mnsize bench`) and a prediction from a
device profile (`mnsize latency`)."""

from __future__ import annotations

from typing import IO

from ..expand import Config
from ..text import printable
from .base import Grid, describe, dump_json, format_alpha, write_grid


def render_timing(config: Config, threads: int, batch: int, timing, fmt: str, out: IO[str]) -> None:
    """One measurement (mnsize.bench.Timing) as a line of text or JSON."""
    h, w = config.resolution
    if fmt == "json":
        dump_json({"schema": "mnsize.bench/1", "model": config.model, "alpha": float(config.alpha),
                   "resolution": [h, w], "threads": threads, "batch": batch,
                   "median_ms": round(timing.median_ms, 4), "p10_ms": round(timing.p10_ms, 4),
                   "p90_ms": round(timing.p90_ms, 4), "runs": timing.runs}, out)
        return
    out.write(f"{printable(config.model)} α {format_alpha(config.alpha)} {h}×{w}, batch {batch}, "
              f"{threads} thread(s): median {timing.median_ms:.3f} ms (p10 {timing.p10_ms:.3f}, "
              f"p90 {timing.p90_ms:.3f}; spread {100 * timing.spread:.1f}% over {timing.runs} runs)\n")


def render_prediction(config: Config, profile_path: str, device: dict, total_ms: float,
                      per_layer: list[tuple[str, float]], fmt: str, out: IO[str]) -> None:
    """A profile's prediction, per layer and in total."""
    if fmt == "json":
        dump_json({"schema": "mnsize.latency/1", "model": config.model, "alpha": float(config.alpha),
                   "resolution": list(config.resolution), "predicted_ms": round(total_ms, 4),
                   "layers": [{"name": name, "predicted_ms": round(ms, 5)} for name, ms in per_layer]}, out)
        return
    write_grid(Grid(
        title="predicted latency",
        headers=["layer", "ms", "% of total"], right={1, 2},
        rows=[[name, f"{ms:.4f}", f"{100 * ms / total_ms:.1f}%" if total_ms else "-"] for name, ms in per_layer],
        totals=["total (with the network offset)", f"{total_ms:.3f}", "100.0%"],
        notes=[f"{describe(config)}, BatchNorm folded.",
               f"Profile {profile_path}: {device.get('cpu', '?')}, {device.get('threads', '?')} thread(s), "
               f"torch {device.get('torch', '?')}, {device.get('date', '?')}."]), "table", out)
