"""Calibrating a latency profile: the networks a profile is fitted to, their
features, the fit (non-negative least squares on relative error) and the
held-out check of it. The timing itself is mnsize.bench's, or is done
elsewhere: the networks written as ONNX files with a manifest
(export_networks), their timings read back (read_manifest, read_timings).

``seconds`` bounds a whole calibration, not only its timing: building each
network, its first runs and a warm-up per round come on top of the timed runs,
and on the 2-core machine of docs/latency.md they took about as long as the
timed runs themselves, so the timing gets TIMING_SHARE of what is left when
it starts, in ROUNDS interleaved rounds.
"""

from __future__ import annotations

import csv
import io
import math
import os
import platform
import statistics
import time
from datetime import date

from .bench import time_networks
from .costs import count
from .errors import MnsizeError
from .expand import deployed, expand
from .latency import (CACHE_CHOICES_MIB, CALIBRATION_SECONDS, FEATURES, PROFILE_FORMAT, SPILL_FEATURE, model_features,
                      quality_of, report_features, spilled, weight_bytes)
from .models import load_spec
from .runtimes import has_call_overhead, keep_freed_memory, runtime_version

#: the share of the time left that the timed runs get, and their interleaved rounds (measured: docs/latency.md)
TIMING_SHARE = 0.5
ROUNDS = 3


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
    """fp32 lanes of the widest vector unit of this CPU: 16 with AVX-512, else
    8 (AVX2's width, taken for any other CPU too). Read from /proc/cpuinfo, so
    that no runtime need be imported for it."""
    return 16 if "avx512f" in (_cpuinfo("flags") or "").split() else 8


def _deployed_report(config: tuple[str, str, int]):
    """The counts (mnsize.costs.Report) of a (model, alpha, resolution) as deployed, BatchNorm folded."""
    name, alpha, res = config
    return count(deployed(expand(load_spec(name), alpha, res)))


def features_of(config: tuple[str, str, int], lanes: int, runtime: str = "torch") -> tuple[float, ...]:
    """The network's summed features (report_features) as ``runtime``'s model counts them."""
    return report_features(_deployed_report(config), lanes, compiled=not has_call_overhead(runtime))


def weights_of(config: tuple[str, str, int]) -> float:
    """Bytes of the network's weights as deployed (mnsize.latency.weight_bytes)."""
    return weight_bytes(_deployed_report(config))


#: Huber's loss: relative errors up to this count squared, larger ones in proportion (fit_robust)
HUBER_ERROR = 0.05
HUBER_ROUNDS = 10


def fit_costs(rows: list[tuple[float, ...]], targets: list[float],
              weights: list[float] | None = None) -> list[float]:
    """Non-negative least squares on relative error (a negative cost per byte
    means nothing), each network's squared error times its weight (default
    1): Lawson and Hanson's active-set method (Solving Least Squares
    Problems, 1974, ch. 23) on the normal equations, each column scaled to
    unit length first. Columns that are all zero cost 0."""
    scaled = [tuple(x / t for x in r) for r, t in zip(rows, targets)]
    weights = [1.0] * len(rows) if weights is None else weights
    n = len(rows[0])
    norms = [math.sqrt(sum(w * r[j] ** 2 for r, w in zip(scaled, weights))) for j in range(n)]
    unit = [tuple(x / norm if norm else 0.0 for x, norm in zip(r, norms)) for r in scaled]
    gram = [[sum(w * r[i] * r[j] for r, w in zip(unit, weights)) for j in range(n)] for i in range(n)]
    moment = [sum(w * r[i] for r, w in zip(unit, weights)) for i in range(n)]
    x, active, barred = [0.0] * n, [], {j for j in range(n) if not norms[j]}
    for _ in range(3 * n):
        gradient = [moment[j] - sum(gram[j][k] * x[k] for k in range(n)) for j in range(n)]
        free = [j for j in range(n) if j not in active and j not in barred and gradient[j] > 1e-12]
        if not free:
            break
        active.append(max(free, key=gradient.__getitem__))
        while active:
            z = _solve([[gram[i][j] for j in active] for i in active], [moment[i] for i in active])
            if z is None:  # the column just added depends on the others: it costs nothing more
                barred.add(active.pop())
                continue
            if all(v > 0 for v in z):
                x = [0.0] * n
                for j, v in zip(active, z):
                    x[j] = v
                break
            step = min(x[j] / (x[j] - v) for j, v in zip(active, z) if v <= 0)
            for j, v in zip(active, z):
                x[j] += step * (v - x[j])
            active = [j for j in active if x[j] > 1e-15]
            x = [v if j in active else 0.0 for j, v in enumerate(x)]
    return [v / norm if norm else 0.0 for v, norm in zip(x, norms)]


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


def held_out(n: int) -> list[int]:
    """The networks the held-out check leaves out of its fit: every fifth."""
    return [i for i in range(n) if i % 5 == 2]


def networks_needed(runtime: str) -> int:
    """The fewest networks a profile can be fitted to: enough that the held-out
    fit still has a network for every cost it fits (and the offset)."""
    costs = len(model_features(has_call_overhead(runtime))) + 1 + (not has_call_overhead(runtime))  # offset, spill
    n = costs
    while n - len(held_out(n)) < costs:
        n += 1
    return n


def fit_profile(rows: list[tuple[float, ...]], targets: list[float], runtime: str,
                weights: list[float] | None = None) -> tuple[dict, dict, str]:
    """(model, error, quality) of a profile for ``runtime`` fitted to networks
    with these features (report_features) and latencies: the costs of
    the runtime's features (model_features) and the offset, fitted to all of
    them; the error of a fit without every fifth network, on those. A
    compiled runtime's fit also takes the networks' ``weights`` (weight_bytes)
    and chooses the cache size its spilled weights are counted from."""
    features = model_features(has_call_overhead(runtime))
    keep = [FEATURES.index(name) for name in features] + [len(FEATURES)]
    rows = [tuple(row[j] for j in keep) for row in rows]
    weights = None if has_call_overhead(runtime) else weights
    coef, cache = _fit(rows, targets, weights)
    test = held_out(len(rows))
    train = [i for i in range(len(rows)) if i not in test]
    held, held_cache = _fit([rows[i] for i in train], [targets[i] for i in train],
                            None if weights is None else [weights[i] for i in train])
    check = _with_spill([rows[i] for i in test], None if weights is None else [weights[i] for i in test], held_cache)
    errors = relative_errors(held, check, [targets[i] for i in test])
    within = round(sum(e <= 0.10 for e in errors) / len(errors), 3)
    names = features + (() if weights is None else (SPILL_FEATURE,))
    model = {"ms_per": dict(zip(names, coef[:-1])), "offset_ms": coef[-1]}
    if weights is not None:
        model["cached_weights_mib"] = cache
    error = {"networks": len(rows), "held_out": len(test),
             "held_out_median_error_pct": round(100 * statistics.median(errors), 2),
             "held_out_within_10pct": within}
    return model, error, quality_of(within)


def _with_spill(rows, weights, cache_mib):
    """Rows (ending with the constant term) with the spilled weights put before it; without ``weights``, as they are."""
    if weights is None:
        return rows
    return [row[:-1] + (spilled(w, cache_mib), row[-1]) for row, w in zip(rows, weights)]


def fit_robust(rows: list[tuple[float, ...]], targets: list[float]) -> tuple[list[float], float]:
    """(coefficients, loss): fit_costs with Huber's loss on relative error
    (Huber, Robust Statistics, 1981) by iteratively reweighted least squares:
    a network missed by more than HUBER_ERROR weighs less the more it is
    missed, so that a few networks timed in a burst of other work on the
    machine do not pull the costs of all the others."""
    coef = fit_costs(rows, targets)
    for _ in range(HUBER_ROUNDS):
        errors = relative_errors(coef, rows, targets)
        coef = fit_costs(rows, targets, [min(1.0, HUBER_ERROR / e) if e else 1.0 for e in errors])
    loss = sum(e * e if e <= HUBER_ERROR else HUBER_ERROR * (2 * e - HUBER_ERROR)
               for e in relative_errors(coef, rows, targets))
    return coef, loss


def _fit(rows, targets, weights) -> tuple[list[float], int | None]:
    """(coefficients, cache MiB): fit_robust; with ``weights``, the fit with
    the spilled weights counted from each of CACHE_CHOICES_MIB whose loss is
    least."""
    if weights is None:
        return fit_robust(rows, targets)[0], None
    fits = []
    for cache in CACHE_CHOICES_MIB:
        coef, loss = fit_robust(_with_spill(rows, weights, cache), targets)
        fits.append((loss, cache, coef))
    _, cache, coef = min(fits)
    return coef, cache


def profile_data(runtime: str, version: str, device: dict, model: dict, error: dict, quality: str) -> dict:
    """A profile as mnsize.latency.load_profile reads it."""
    return {"format": PROFILE_FORMAT, "written_by": "mnsize profile",
            "runtime": {"name": runtime, "version": version}, "quality": quality,
            "device": device, "model": model, "error": error}


def calibrate(threads: int = 1, seconds: float = CALIBRATION_SECONDS, networks=CALIBRATION_NETWORKS, tick=None,
              runtime: str = "torch") -> dict:
    """Time the calibration networks in ``runtime`` and fit the profile's
    coefficients, all within about ``seconds``."""
    start = time.perf_counter()
    version = runtime_version(runtime)  # refuses a runtime that is not installed before any work
    lanes = vector_lanes()
    rows = [features_of(config, lanes, runtime) for config in networks]
    weights = None if has_call_overhead(runtime) else [weights_of(config) for config in networks]
    left = seconds - (time.perf_counter() - start)
    timings = time_networks(list(networks), threads, max(1.0, TIMING_SHARE * left), ROUNDS, tick=tick,
                            runtime=runtime)
    model, error, quality = fit_profile(rows, [t.latency_ms for t in timings], runtime, weights)
    error["largest_spread_pct"] = round(100 * max(t.spread for t in timings), 1)
    device = {"cpu": _cpu_name(), "machine": platform.machine(), "cores": os.cpu_count() or 1,
              "threads": threads, "python": platform.python_version(), "date": date.today().isoformat(),
              "allocator": keep_freed_memory()}
    if runtime == "torch":
        device["torch"] = version.split(" ", 1)[-1]
    return profile_data(runtime, version, device, {**model, "lanes": lanes}, error, quality)


def _cpu_name() -> str:
    return _cpuinfo("model name") or platform.processor() or platform.machine()


def _cpuinfo(key: str) -> str | None:
    """The first ``key`` of /proc/cpuinfo (Linux), None where there is none."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as file:
            return next((line.split(":", 1)[1].strip() for line in file if line.startswith(key)), None)
    except OSError:
        return None


# --------------------------------------------------------------------------- timed elsewhere

MANIFEST = "manifest.csv"
MANIFEST_COLUMNS = ("file", "model", "alpha", "resolution")
TIMING_COLUMNS = ("file", "median_ms")


def onnx_name(config: tuple[str, str, int]) -> str:
    name, alpha, res = config
    return f"{name}_{alpha}_{res}.onnx"


def export_networks(folder: str, runtime: str, networks=None, tick=None) -> int:
    """Write every network as an ONNX file in ``folder``, then manifest.csv
    (file, model, alpha, resolution, and the runtime they are for), each file
    atomically: the manifest comes last, so a folder with one holds every
    network it names."""
    from .files import write_atomic
    from .onnxexport import export_onnx

    networks = CALIBRATION_NETWORKS if networks is None else networks
    listing = io.StringIO()
    writer = csv.writer(listing, lineterminator="\n")
    writer.writerow((*MANIFEST_COLUMNS, "runtime"))
    for config in networks:
        name, alpha, res = config
        layers = deployed(expand(load_spec(name), alpha, res))
        doc = f"{name} at alpha {alpha}, {res}x{res}: a calibration network of mnsize profile (random weights)"
        write_atomic(os.path.join(folder, onnx_name(config)), export_onnx(layers, name, doc=doc))
        writer.writerow((onnx_name(config), name, alpha, res, runtime))
        if tick is not None:
            tick(1 / len(networks))
    write_atomic(os.path.join(folder, MANIFEST), listing.getvalue())
    return len(networks)


def _rows(path: str, columns: tuple[str, ...]):
    """(line, row) of a CSV file with at least ``columns``; an error names the file and line."""
    try:
        with open(path, encoding="utf-8", newline="") as file:
            text = file.read()
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else "not UTF-8 text"
        raise MnsizeError(f"{path}: cannot read: {reason}") from None
    reader = csv.DictReader(io.StringIO(text))
    header = reader.fieldnames or []
    missing = [c for c in columns if c not in header]
    if missing:
        raise MnsizeError(f"{path}:1: missing column{'s' * (len(missing) > 1)} {', '.join(missing)} "
                          f"(expected {', '.join(columns)})")
    try:
        for row in reader:
            if any((row.get(c) or "").strip() for c in header):  # blank lines are skipped
                yield reader.line_num, row
    except csv.Error as exc:
        raise MnsizeError(f"{path}:{reader.line_num}: not CSV: {exc}") from None


def read_manifest(path: str) -> tuple[dict[str, tuple[str, str, int]], str | None]:
    """(file -> (model, alpha, resolution), the runtime the export named or
    None) of a manifest export_networks wrote."""
    from .runtimes import RUNTIMES

    manifest: dict[str, tuple[str, str, int]] = {}
    runtimes = set()
    for line, row in _rows(path, MANIFEST_COLUMNS):
        runtime = (row.get("runtime") or "").strip()
        if runtime and runtime not in RUNTIMES:
            raise MnsizeError(f"{path}:{line}: runtime must be one of {', '.join(RUNTIMES)}, got {runtime!r}")
        runtimes.add(runtime or None)
        file, res = row["file"].strip(), row["resolution"].strip()
        if file in manifest:
            raise MnsizeError(f"{path}:{line}: {file} is listed twice")
        if not res.isdigit():
            raise MnsizeError(f"{path}:{line}: resolution must be a whole number, got {res!r}")
        manifest[file] = (row["model"].strip(), row["alpha"].strip(), int(res))
    return manifest, runtimes.pop() if len(runtimes) == 1 else None


def read_timings(path: str, manifest: dict[str, tuple], manifest_path: str, runtime: str) -> list[tuple[tuple, float]]:
    """(network, median ms) per line of a timings file (file, median_ms), each
    file one of the manifest's, once, with a positive finite time."""
    first: dict[str, int] = {}
    timed = []
    last = 1
    for line, row in _rows(path, TIMING_COLUMNS):
        last = line
        file, value = row["file"].strip(), (row["median_ms"] or "").strip()
        if file not in manifest:
            raise MnsizeError(f"{path}:{line}: {file!r} is not in the manifest {manifest_path}")
        if file in first:
            raise MnsizeError(f"{path}:{line}: {file} is timed twice (first on line {first[file]})")
        first[file] = line
        try:
            ms = float(value)
        except ValueError:
            ms = math.nan
        if not (math.isfinite(ms) and ms > 0):
            raise MnsizeError(f"{path}:{line}: median_ms must be a positive, finite number of milliseconds, "
                              f"got {value!r}")
        timed.append((manifest[file], ms))
    needed = networks_needed(runtime)
    if len(timed) < needed:
        raise MnsizeError(f"{path}:{last}: {len(timed)} networks timed; a profile for {runtime} needs at least "
                          f"{needed} to fit")
    return timed


def profile_from_timings(timed: list[tuple[tuple, float]], runtime: str, lanes: int, source: str) -> dict:
    """A profile fitted to timings measured elsewhere, on a CPU with ``lanes`` fp32 vector lanes."""
    rows = [features_of(config, lanes, runtime) for config, _ in timed]
    weights = [weights_of(config) for config, _ in timed]
    model, error, quality = fit_profile(rows, [ms for _, ms in timed], runtime, weights)
    device = {"timings": os.path.basename(source), "date": date.today().isoformat()}
    return profile_data(runtime, "unknown (timed elsewhere)", device, {**model, "lanes": lanes}, error, quality)
