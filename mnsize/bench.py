"""Measuring latency on this machine (torch), and calibrating a profile.

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
import os
import platform
import statistics
import time
from datetime import date

from .bounds import MAX_BENCH_BYTES
from .costs import count
from .crosscheck import forward_bytes, import_torch
from .errors import MnsizeError
from .expand import Layer, deployed, expand
from .latency import FEATURES, PROFILE_FORMAT, report_features
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


# --------------------------------------------------------------------------- calibration


def grid_configs(family: str, alphas: str, resolutions: tuple[int, ...]) -> list[tuple[str, str, int]]:
    return [(family, alpha, res) for alpha in alphas.split() for res in resolutions]


#: the networks a profile is fitted to: V1, V2 and V3 across alpha (aligned and
#: unaligned widths) and resolution (64 to 512). benchmarks/latency_accuracy.py
#: checks the predictor on other alphas.
CALIBRATION_NETWORKS = (
    grid_configs("mobilenet_v1", "0.25 0.3 0.45 0.5 0.65 0.75 0.85 1.0 1.1 1.4", (96, 128, 160, 224, 288))
    + grid_configs("mobilenet_v1", "0.25 0.5 1.0", (64, 384)) + grid_configs("mobilenet_v1", "0.25 0.5", (512,))
    + grid_configs("mobilenet_v2", "0.35 0.45 0.75 1.0 1.4", (96, 160, 224))
    + grid_configs("mobilenet_v2", "0.35 1.0", (64, 384)) + grid_configs("mobilenet_v2", "0.6", (128, 288))
    + grid_configs("mobilenet_v2", "1.4", (288,))
    + grid_configs("mobilenet_v3_large", "0.35 0.5 1.0 1.4", (96, 128, 224, 288))
    + grid_configs("mobilenet_v3_small", "0.35 0.5 1.0 1.4", (96, 128, 224, 288)))


def vector_lanes() -> int:
    """fp32 lanes of the widest vector unit torch uses on this CPU: 16 with
    AVX-512, else 8 (AVX2's width, taken for any other CPU too)."""
    capability = str(import_torch().backends.cpu.get_cpu_capability()).upper()
    return 16 if "AVX512" in capability else 8


def features_of(config: tuple[str, str, int], lanes: int) -> tuple[float, ...]:
    name, alpha, res = config
    return report_features(count(deployed(expand(load_spec(name), alpha, res))), lanes)


def fit_costs(rows: list[tuple[float, ...]], targets: list[float]) -> list[float]:
    """Non-negative least squares on relative error, for a handful of features:
    the normal equations solved on every subset of them, the best
    non-negative solution kept (a negative cost per byte means nothing)."""
    scaled = [tuple(x / t for x in r) for r, t in zip(rows, targets)]
    n = len(rows[0])
    best, best_err = [0.0] * n, float("inf")
    for mask in range(1, 2 ** n):
        cols = [j for j in range(n) if mask >> j & 1]
        a = [[sum(r[i] * r[j] for r in scaled) for j in cols] for i in cols]
        b = [sum(r[i] for r in scaled) for i in cols]
        solution = _solve(a, b)
        if solution is None or any(v < 0 for v in solution):
            continue
        coef = [0.0] * n
        for j, v in zip(cols, solution):
            coef[j] = v
        err = sum((sum(c * x for c, x in zip(coef, r)) - 1.0) ** 2 for r in scaled)
        if err < best_err:
            best, best_err = coef, err
    return best


def _solve(a: list[list[float]], b: list[float]) -> list[float] | None:
    n = len(b)
    m = [row[:] + [v] for row, v in zip(a, b)]
    for col in range(n):
        pivot = max(range(col, n), key=lambda r: abs(m[r][col]))
        if abs(m[pivot][col]) < 1e-300:
            return None
        m[col], m[pivot] = m[pivot], m[col]
        for r in range(n):
            if r != col:
                f = m[r][col] / m[col][col]
                m[r] = [x - f * y for x, y in zip(m[r], m[col])]
    return [m[i][n] / m[i][i] for i in range(n)]


def relative_errors(coef: list[float], rows, targets) -> list[float]:
    return [abs(sum(c * x for c, x in zip(coef, r)) - t) / t for r, t in zip(rows, targets)]


def calibrate(threads: int = 1, seconds: float = 65, networks=CALIBRATION_NETWORKS, tick=None) -> dict:
    """Time the calibration networks and fit the profile's coefficients."""
    torch = import_torch()
    timings = time_networks(list(networks), threads, seconds, tick=tick)
    lanes = vector_lanes()
    rows = [features_of(config, lanes) for config in networks]
    targets = [t.median_ms for t in timings]
    coef = fit_costs(rows, targets)
    # held out: refit without every fifth network, check those
    train = [i for i in range(len(rows)) if i % 5 != 2]
    test = [i for i in range(len(rows)) if i % 5 == 2]
    held = fit_costs([rows[i] for i in train], [targets[i] for i in train])
    errors = relative_errors(held, [rows[i] for i in test], [targets[i] for i in test])
    return {
        "format": PROFILE_FORMAT,
        "written_by": "mnsize profile",
        "device": {"cpu": _cpu_name(), "machine": platform.machine(), "cores": os.cpu_count() or 1,
                   "threads": threads, "torch": str(torch.__version__), "python": platform.python_version(),
                   "date": date.today().isoformat(), "allocator": keep_freed_memory()},
        "model": {"ms_per": dict(zip(FEATURES, coef[:-1])), "offset_ms": coef[-1], "lanes": lanes},
        "error": {"networks": len(rows), "held_out": len(test),
                  "held_out_median_error_pct": round(100 * statistics.median(errors), 2),
                  "held_out_within_10pct": round(sum(e <= 0.10 for e in errors) / len(errors), 3),
                  "largest_spread_pct": round(100 * max(t.spread for t in timings), 1)},
    }


def _cpu_name() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as file:
            for line in file:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()
