"""mnsize from Python: the main job of `fit`, `check` and `verify` as
functions that give the answers the commands give.

    >>> import mnsize
    >>> best = mnsize.fit("mobilenet_v1", max_madds="150M").best
    >>> float(best.alpha), best.resolution, best.madds
    (0.5, (224, 224), 149497088)
    >>> all(result.passed for result in mnsize.check("configs/budgets.yaml"))
    True

Limits are an ``int`` in the metric's own unit (a count, bytes, or whole
microseconds for latency) or text as the command line takes it ("150M",
"2MB", "8ms"). Bad input raises ``mnsize.MnsizeError``.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from fractions import Fraction

from .bounds import MAX_CHANNELS
from .errors import MnsizeError
from .gate import Result
from .metrics import DEFAULT_ALPHAS, DEFAULT_RESOLUTIONS, METRICS, Limits
from .search import Fit
from .spec import Spec


def _convention(name: str | None):
    from .conventions import CONVENTIONS

    if name is None:
        return None
    if name not in CONVENTIONS:
        raise MnsizeError(f"unknown convention {name!r}: the conventions are {', '.join(CONVENTIONS)}")
    return CONVENTIONS[name]


def _limit(name: str, value: int | str | None) -> int | None:
    if value is None or (isinstance(value, int) and not isinstance(value, bool) and value >= 0):
        return value
    if isinstance(value, str):
        return METRICS[name].parse_limit(value)
    raise MnsizeError(f"max_{name} must be a whole number of at least 0 or text such as 150M, got {value!r}")


def _grid(values, parse):
    return parse(values) if isinstance(values, str) else list(values)


def fit(models: str | Iterable[str] = "mobilenet_v1", *, max_madds: int | str | None = None,
        max_params: int | str | None = None, max_size: int | str | None = None,
        max_activations: int | str | None = None, max_latency: int | str | None = None,
        profile: str | None = None, dtype: str = "fp32", alphas: str | Sequence = DEFAULT_ALPHAS,
        resolutions: str | Sequence = DEFAULT_RESOLUTIONS, objective: str = "madds", top: int = 5,
        classes: int | None = None, convention: str | None = None) -> Fit:
    """The largest models within every limit given, as `mnsize fit` finds them.

    ``models``: built-in names or spec paths (one, or several to compare
    families). ``alphas`` and ``resolutions``: lists, or text as the options
    take it ("0.25:1.00:0.05"). ``objective``: madds, params or top1. A
    latency limit needs ``profile`` (a file `mnsize profile` wrote).
    The result's ``best`` is None when nothing fits.
    """
    from .latency import load_profile
    from .models import load_spec
    from .search import fit_specs
    from .units import DTYPES, parse_alphas, parse_resolutions

    names = [models] if isinstance(models, str) else list(dict.fromkeys(models))
    limits = Limits(madds=_limit("madds", max_madds), params=_limit("params", max_params),
                    size=_limit("size", max_size), activations=_limit("activations", max_activations),
                    latency=_limit("latency", max_latency))
    if not limits:
        raise MnsizeError("give at least one limit: max_madds, max_params, max_size, max_activations or max_latency")
    if limits.get("latency") is not None and profile is None:
        raise MnsizeError("max_latency needs a profile (write one with mnsize profile)")
    if dtype not in DTYPES:
        raise MnsizeError(f"dtype must be one of {', '.join(DTYPES)}, got {dtype!r}")
    if classes is not None and not 1 <= classes <= MAX_CHANNELS:
        raise MnsizeError(f"classes must be from 1 to {MAX_CHANNELS:,}, got {classes!r}")
    alpha_list = _grid(alphas, parse_alphas)
    resolution_list = [(r, r) if isinstance(r, int) else tuple(r) for r in _grid(resolutions, parse_resolutions)]
    specs = [load_spec(name) for name in names]
    device_profile = load_profile(profile) if profile is not None else None
    return fit_specs(specs, alpha_list, resolution_list, limits, objective, top, classes, dtype,
                     _convention(convention), device_profile)


def check(*budget_files: str, baseline: str | None = None, max_growth: Fraction | str | None = None,
          convention: str | None = None) -> list[Result]:
    """Every budget in ``budget_files`` against its limits, as `mnsize check`
    does: one Result per limit, each with ``status`` pass, warn or fail
    (``passed`` says whether it is not a fail). With ``baseline`` (a file
    ``--write-baseline`` wrote), a metric that grew more than ``max_growth``
    ("5%", or a fraction) fails too."""
    from .baseline import read_baseline
    from .budgets import load_budgets
    from .gate import check_budgets
    from .units import parse_percent

    if not budget_files:
        raise MnsizeError("give at least one budgets file")
    if max_growth is not None and baseline is None:
        raise MnsizeError("max_growth needs a baseline")
    growth = parse_percent(max_growth) if isinstance(max_growth, str) else max_growth
    counting = _convention(convention)
    before = read_baseline(baseline, counting) if baseline is not None else None
    return check_budgets(load_budgets(*budget_files), before, growth, counting)


def verify(model: str | Spec = "mobilenet_v1", alpha: Fraction | str = "1.0",
           resolution: int | tuple[int, int] | None = None, classes: int | None = None, device: str = "meta"):
    """``model`` (a name, a path or a Spec) built in PyTorch and counted there,
    layer by layer, against mnsize's counts, as `mnsize verify` does; the
    result's ``match`` says whether every layer agrees. Needs torch."""
    from . import crosscheck
    from .models import load_spec, resolve_resolution

    spec = model if isinstance(model, Spec) else load_spec(model)
    return crosscheck.verify(spec, alpha, resolve_resolution(spec, resolution), classes, device)
