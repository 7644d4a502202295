"""Calibrating a latency profile: the networks a profile is fitted to, their
features, the fit (non-negative least squares on relative error) and the
held-out check of it. The timing itself is mnsize.bench's."""

from __future__ import annotations

import os
import platform
import statistics
from datetime import date

from .bench import keep_freed_memory, time_networks
from .costs import count
from .crosscheck import import_torch
from .expand import deployed, expand
from .latency import FEATURES, PROFILE_FORMAT, report_features
from .models import load_spec


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
