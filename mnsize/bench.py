"""Measuring latency on this machine (torch); mnsize.calibrate fits a profile to it.

Timing discipline: a fixed number of threads, eval mode and
torch.inference_mode, BatchNorm folded into the convolutions as any deployment
does (a conv with a bias in place of conv + BatchNorm), freed memory kept in
the process (see keep_freed_memory), warm-up runs, then many timed runs
summarised by the median with p10 and p90. Networks compared with each other
are timed in interleaved rounds, so that the machine's drift hits them alike.
"""

from __future__ import annotations

import ctypes
import dataclasses
import statistics
import time

from .bounds import MAX_BENCH_BYTES
from .crosscheck import forward_bytes, import_torch
from .errors import MnsizeError
from .expand import Layer, deployed, expand
from .models import load_spec


@dataclasses.dataclass(frozen=True)
class Timing:
    runs: int
    median_ms: float
    p10_ms: float
    p90_ms: float

    @property
    def spread(self) -> float:
        """(p90 - p10) / median: how much the runs disagree."""
        return (self.p90_ms - self.p10_ms) / self.median_ms if self.median_ms else 0.0


def summarise(samples_ms: list[float]) -> Timing:
    ordered = sorted(samples_ms)
    return Timing(len(ordered), statistics.median(ordered), ordered[int(0.1 * (len(ordered) - 1))],
                  ordered[round(0.9 * (len(ordered) - 1))])


def memory_bytes(layers: tuple[Layer, ...], batch: int, threads: int = 1) -> int:
    """An upper bound of what timing ``layers`` (BatchNorm folded) adds to the
    process, with freed memory kept (mnsize.crosscheck.forward_bytes)."""
    return forward_bytes(deployed(layers), batch, folded=True, kept_by_threads=threads)


M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3  # glibc's mallopt parameters


def keep_freed_memory() -> str:
    """Make the C allocator keep freed memory in the process; say what was done.

    By default glibc serves large blocks with fresh memory maps and hands
    memory back to the system as soon as enough of it is free, with thresholds
    that move with what the process freed before, so a network's activations
    are page-faulted in afresh on some runs and not on others, and its timings
    differ between runs and between processes (docs/latency.md). With both
    thresholds fixed high, every run after the warm-up reuses the memory of
    the one before, as a deployment runtime with a memory arena does. Elsewhere
    than glibc this does nothing and says so."""
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):
        return "system default"
    mallopt.argtypes, mallopt.restype = (ctypes.c_int, ctypes.c_int), ctypes.c_int
    for limit in (2**30, 2**25):  # some glibc versions refuse a map threshold above 32 MiB
        if mallopt(M_MMAP_THRESHOLD, limit) == 1 and mallopt(M_TRIM_THRESHOLD, 2 * limit) == 1:
            return f"freed memory kept (malloc thresholds {limit // 2**20} MiB)"
    return "system default"


def prepare(threads: int):
    """torch, set up for timing: ``threads`` threads, freed memory kept."""
    torch = import_torch()
    torch.set_num_threads(threads)
    keep_freed_memory()
    return torch


def _samples(module, x, runs: int, warmup: int, tick=None) -> list[float]:
    torch = import_torch()
    out = []
    with torch.inference_mode():
        for _ in range(warmup):
            module(x)
        for _ in range(runs):
            start = time.perf_counter()
            module(x)
            out.append((time.perf_counter() - start) * 1000)
            if tick is not None:
                tick()
    return out


def _check_memory(layers: tuple[Layer, ...], batch: int, threads: int) -> None:
    need = memory_bytes(layers, batch, threads)
    if need > MAX_BENCH_BYTES:
        raise MnsizeError(f"this configuration may need {need / 2**30:,.1f} GiB for weights, activations and "
                          f"working memory; bench runs at most {MAX_BENCH_BYTES / 2**30:.0f} GiB")


def _build(layers: tuple[Layer, ...], input_shape, batch: int):
    """The model and an input; its memory was checked (_check_memory) before."""
    torch = import_torch()
    from .nn import build_layers

    return build_layers(deployed(layers)).eval(), torch.randn(batch, *input_shape)


def time_layers(layers: tuple[Layer, ...], input_shape: tuple[int, int, int], threads: int = 1, batch: int = 1,
          runs: int = 50, warmup: int = 10, tick=None) -> Timing:
    """Latency of the whole network (BatchNorm folded) on this machine."""
    _check_memory(layers, batch, threads)
    prepare(threads)
    model, x = _build(layers, input_shape, batch)
    return summarise(_samples(model, x, runs, warmup, tick))


def time_networks(configs: list[tuple], threads: int, seconds: float, rounds: int = 6, tick=None) -> list[Timing]:
    """Median latency of each (model, alpha, resolution), timed in interleaved
    rounds within about ``seconds``; each network's runs pooled over the rounds.
    A resolution is a side (square) or (H, W)."""
    networks = []
    for name, alpha, res in configs:  # every one checked before any is built or timed
        spec = load_spec(name)
        hw = (res, res) if isinstance(res, int) else tuple(res)
        layers = expand(spec, alpha, hw)
        try:
            _check_memory(layers, 1, threads)
        except MnsizeError as exc:
            raise MnsizeError(f"{spec.name} α {float(alpha):g} {hw[0]}×{hw[1]}: {exc}") from None
        networks.append((spec, hw, layers))
    prepare(threads)
    built = []
    for spec, hw, layers in networks:
        model, x = _build(layers, (spec.in_channels, *hw), 1)
        first = statistics.median(_samples(model, x, runs=2, warmup=1))
        runs = max(3, int(seconds * 1000 / (rounds * len(configs)) / max(first, 1e-3)))
        built.append((model, x, runs))
    pooled: list[list[float]] = [[] for _ in configs]
    for _ in range(rounds):
        for samples, (model, x, runs) in zip(pooled, built):
            samples += _samples(model, x, runs, warmup=1)
            if tick is not None:
                tick(1 / (rounds * len(configs)))
    return [summarise(samples) for samples in pooled]
