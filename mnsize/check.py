"""The budget gate: measure each budget's configuration, compare with its
limits (and, optionally, with a baseline), give every metric a status.

Statuses: 'fail' when a value is over its limit, or grew more than the allowed
growth since the baseline; 'warn' when it is above ``warn_at`` of its limit;
'pass' otherwise. A limit is inclusive: a value equal to it passes.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from fractions import Fraction

from .budgets import Budget
from .costs import count
from .errors import MnsizeError, show
from .expand import expand
from .models import load_model
from .search import deployed_params, peak_activations
from .units import DTYPE_BYTES

BASELINE_FORMAT = "mnsize-baseline/1"


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

    @property
    def margin(self) -> float:
        """The share of the limit used, in percent."""
        return 100 * self.value / self.limit if self.limit else float("inf")


def measure(budget: Budget, cache: dict | None = None, convention=None) -> tuple[dict[str, int], tuple[int, int]]:
    """The four metrics of the budget's configuration (sizes in bytes at its
    dtype), and the resolution they were measured at."""
    cache = {} if cache is None else cache
    if budget.model not in cache:
        cache[budget.model] = load_model(budget.model)
    spec = cache[budget.model]
    resolution = budget.resolution or spec.resolution
    try:
        layers = expand(spec, budget.alpha, resolution, budget.classes)
    except ValueError as exc:
        raise MnsizeError(f"{budget.file or 'budget'}: budget {budget.name!r}: {exc}") from None
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
        values["latency"] = int(predicted_ms * 1000)
    return values, resolution


def check(budgets: list[Budget], baseline: dict[str, dict[str, int]] | None = None,
          max_growth: Fraction | None = None, convention=None) -> list[Result]:
    """Every budget's metrics against its limits; mult-adds and params counted
    by ``convention`` when one is given (mnsize.conventions)."""
    cache: dict = {}
    results = []
    for budget in budgets:
        values, resolution = measure(budget, cache, convention)
        before = (baseline or {}).get(budget.name, {})
        for metric, limit in budget.limits:
            value = values[metric]
            reasons = []
            if value > limit:
                reasons.append("over the limit")
            old = before.get(metric)
            if metric in ("size", "activations") and before.get("dtype", budget.dtype) != budget.dtype:
                old = None  # bytes at another dtype: no comparison
            if max_growth is not None and old is not None and old > 0 and Fraction(value - old, old) > max_growth:
                reasons.append(f"grew {100 * (value - old) / old:.1f}% since the baseline "
                               f"(at most {float(100 * max_growth):g}%)")
            status = "fail" if reasons else "pass"
            if status == "pass" and budget.warn_at is not None and value > budget.warn_at * limit:
                status = "warn"
                reasons.append(f"above {float(100 * budget.warn_at):g}% of the limit")
            results.append(Result(budget, metric, value, limit, status, resolution, tuple(reasons), old))
    return results


def baseline_json(budgets: list[Budget]) -> dict:
    """Today's values of every metric of every budget, for --write-baseline."""
    cache: dict = {}
    return {"format": BASELINE_FORMAT,
            "budgets": {b.name: {"dtype": b.dtype, **measure(b, cache)[0]} for b in budgets}}


def read_baseline(path: str) -> dict[str, dict[str, int]]:
    try:
        with open(path, encoding="utf-8") as file:
            data = json.load(file)
    except FileNotFoundError:
        raise MnsizeError(f"{path}: no such baseline file (write one with --write-baseline)") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise MnsizeError(f"{path}: not a baseline file: {exc}") from None
    if not isinstance(data, dict) or data.get("format") != BASELINE_FORMAT or not isinstance(
            data.get("budgets"), dict):
        raise MnsizeError(f"{path}: not an mnsize baseline (expected \"format\": \"{BASELINE_FORMAT}\")")
    baseline = {}
    for name, values in data["budgets"].items():
        if not isinstance(values, dict):
            raise MnsizeError(f"{path}: budget {show(name)}: expected an object of metric values")
        metrics = {k: v for k, v in values.items() if k != "dtype"}
        if not all(isinstance(v, int) and not isinstance(v, bool) and v >= 0 for v in metrics.values()):
            raise MnsizeError(f"{path}: budget {show(name)}: metric values must be non-negative integers")
        baseline[name] = {**metrics, "dtype": values.get("dtype", "fp32")}
    return baseline
