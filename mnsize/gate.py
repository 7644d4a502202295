"""The budget gate: measure each budget's configuration, compare with its
limits (and, optionally, with a baseline), give every metric a status.

Statuses: 'fail' when a value is over its limit, or grew more than the allowed
growth since the baseline; 'warn' when it is above ``warn_at`` of its limit;
'pass' otherwise. A limit is inclusive: a value equal to it passes, and a
limit of 0 says the value must be 0.
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction

from .budgets import Budget
from .costs import count
from .errors import ConfigError, FileError, GraphError, show
from .expand import expand
from .metrics import METRICS
from .models import is_onnx, load_onnx, load_spec
from .sweep import deployed_params, peak_activations
from .units import DTYPE_BYTES



@dataclass(frozen=True)
class Result:
    budget: Budget
    metric: str
    value: int
    limit: int
    status: str                       # pass | warn | fail
    resolution: tuple[int, int]       # as measured (the spec's default where the budget names none)
    reasons: tuple[str, ...] = ()     # why it is not a pass
    baseline: int | None = None
    over_limit: bool = False
    over_growth: bool = False         # grew more than the allowed growth since the baseline

    @property
    def passed(self) -> bool:
        """Not a fail (a warning passes)."""
        return self.status != "fail"

    @property
    def margin(self) -> float | None:
        """The share of the limit used, in percent; None for a limit of 0,
        of which no value has a share."""
        return 100 * self.value / self.limit if self.limit else None

    @property
    def growth(self) -> float | None:
        """The growth since the baseline, in percent (None without one, or from 0)."""
        return 100 * (self.value - self.baseline) / self.baseline if self.baseline else None


def measure(budget: Budget, cache: dict | None = None, convention=None) -> tuple[dict[str, int], tuple[int, int]]:
    """The four metrics of the budget's configuration (sizes in bytes at its
    dtype), and the resolution they were measured at."""
    cache = {} if cache is None else cache
    try:
        if is_onnx(budget.model):
            key = ("onnx", budget.model, budget.resolution)
            if key not in cache:
                cache[key] = load_onnx(budget.model, budget.alpha, budget.resolution, budget.classes)
            layers, resolution = cache[key].layers, cache[key].config.resolution
        else:
            if budget.model not in cache:
                cache[budget.model] = load_spec(budget.model)
            spec = cache[budget.model]
            resolution = budget.resolution or spec.resolution
            layers = expand(spec, budget.alpha, resolution, budget.classes)
    except (ConfigError, GraphError) as exc:
        raise FileError(str(exc), file=budget.file, line=budget.line, item=f"budget {show(budget.name)}") from None
    paper = count(layers)
    report = paper if convention is None else count(layers, convention)
    nbytes = DTYPE_BYTES[budget.dtype]
    # the stored size is what a deployment keeps, whatever a convention calls params
    values = {"madds": report.madds, "params": report.params,
              "size": deployed_params(layers, paper.params) * nbytes, "activations": peak_activations(layers) * nbytes}
    if budget.profile is not None:
        from .expand import deployed
        from .latency import load_profile

        key = ("profile", budget.profile)
        if key not in cache:
            cache[key] = load_profile(budget.profile)
        predicted_ms, _ = cache[key].predict(count(deployed(layers)))
        values["latency"] = cache[key].microseconds(predicted_ms)
    return values, resolution


def check_budgets(budgets: list[Budget], baseline: dict[str, dict[str, int]] | None = None,
          max_growth: Fraction | None = None, convention=None, cache: dict | None = None) -> list[Result]:
    """Every budget's metrics against its limits; mult-adds and params counted
    by ``convention`` when one is given (mnsize.conventions). With a
    ``baseline``, a metric fails when it grew more than ``max_growth`` (a
    fraction; None allows no growth at all). ``cache`` keeps the specs and
    profiles read, for another pass over the same budgets."""
    cache = {} if cache is None else cache
    results = []
    allowed = Fraction(0) if max_growth is None else max_growth
    for budget in budgets:
        values, resolution = measure(budget, cache, convention)
        before = (baseline or {}).get(budget.name, {})
        for metric, limit in budget.limits:
            value = values[metric]
            reasons = []
            over_limit = value > limit
            if over_limit:
                reasons.append("over the limit")
            old = before.get(metric)
            if METRICS[metric].per_dtype and before.get("dtype", budget.dtype) != budget.dtype:
                old = None  # bytes at another dtype: no comparison
            over_growth = baseline is not None and old is not None and (
                value > old if old == 0 else Fraction(value - old, old) > allowed)
            if over_growth:
                grew = f"grew {100 * (value - old) / old:.1f}%" if old else f"grew from 0 to {value:,}"
                reasons.append(f"{grew} since the baseline (at most {float(100 * allowed):g}%)")
            status = "fail" if reasons else "pass"
            if status == "pass" and budget.warn_at is not None and value > budget.warn_at * limit:
                status = "warn"
                reasons.append(f"above {float(100 * budget.warn_at):g}% of the limit")
            results.append(Result(budget, metric, value, limit, status, resolution, tuple(reasons), old,
                                  over_limit, over_growth))
    return results

