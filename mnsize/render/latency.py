"""Latency output: a measured timing (`mnsize bench`) and a prediction from a
device profile (`mnsize latency`)."""

from __future__ import annotations

from typing import IO

from ..expand import Config
from ..text import printable
from .base import Grid, describe, dump_json, format_alpha, write_grid


def render_timing(config: Config, threads: int, batch: int, timing, fmt: str, out: IO[str], *,
                  runtime: str = "torch", runtime_version: str = "", seconds: float | None = None) -> None:
    """One measurement (mnsize.bench.Timing) as a line of text or JSON;
    ``seconds`` is None where a fixed number of runs was timed."""
    h, w = config.resolution
    if fmt == "json":
        dump_json({"schema": "mnsize.bench/1", "model": config.model, "alpha": float(config.alpha),
                   "resolution": [h, w], "threads": threads, "batch": batch,
                   "latency_ms": round(timing.latency_ms, 4), "statistic": "p10",
                   "median_ms": round(timing.median_ms, 4), "p10_ms": round(timing.p10_ms, 4),
                   "p90_ms": round(timing.p90_ms, 4), "runs": timing.runs, "runtime": runtime,
                   "runtime_version": runtime_version or runtime, "seconds": seconds,
                   "round_spread": round(timing.round_spread, 4)}, out)
        return
    out.write(f"{printable(config.model)} α {format_alpha(config.alpha)} {h}×{w}, batch {batch}, "
              f"{threads} thread(s), {printable(runtime_version or runtime)}: {timing.latency_ms:.3f} ms "
              f"(p10; median {timing.median_ms:.3f}, p90 {timing.p90_ms:.3f}; spread {100 * timing.spread:.1f}% over "
              f"{timing.runs} runs, round medians within {100 * timing.round_spread:.1f}%)\n")


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
