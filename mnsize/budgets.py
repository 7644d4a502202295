"""Budgets files: the limits a CI gate holds models to, validated strictly.

    budgets:
      - name: phone-backbone
        model: mobilenet_v1        # built-in name, or a spec path relative to this file
        alpha: 0.75
        resolution: 160            # or [H, W]; default: the spec's
        max_madds: 200M
        max_params: 3M
        max_size: 3MB              # bytes at dtype (default fp32)
        dtype: int8
        max_activations: 1MB
        warn_at: 90%               # optional: warn above 90% of a limit

Every problem is a BudgetError naming the file, the line, the entry (its
1-based position and name) and the key.
"""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass
from fractions import Fraction

from .bounds import MAX_BUDGETS, MAX_CHANNELS, MAX_SIDE
from .errors import BudgetError, ConfigError, show
from .expand import to_alpha
from .metrics import METRICS, Limits
from .models import is_path
from .units import DTYPES, UnitError, parse_percent
from .yamlio import child, items, key_lines, line_of, load_yaml, read_text

#: a limit's key in an entry -> its metric
LIMIT_KEYS = {metric.budget_key: metric for metric in METRICS.values()}
ENTRY_KEYS = ("name", "model", "alpha", "resolution", "classes", "dtype", "warn_at", "profile", *LIMIT_KEYS)


@dataclass(frozen=True)
class Budget:
    """One named configuration and its limits (metric -> limit, sizes in bytes)."""

    name: str
    model: str
    alpha: Fraction
    resolution: tuple[int, int] | None
    classes: int | None
    dtype: str
    limits: Limits
    warn_at: Fraction | None = None
    profile: str | None = None              # a latency profile, for max_latency
    file: str | None = None
    line: int | None = None                              # the entry's first line
    metric_lines: tuple[tuple[str, int], ...] = ()       # metric -> line of its max_ key

    def line_of(self, metric: str) -> int | None:
        return dict(self.metric_lines).get(metric, self.line)


def load_budgets(*paths: str) -> list[Budget]:
    """Every budget in the files ``paths``, in order; a name may be used once
    across them all."""
    budgets = [budget for path in paths for budget in _load_file(path)]
    files: dict[str, str | None] = {}
    for budget in budgets:
        if budget.name in files:
            raise BudgetError(f"budget {show(budget.name)} is also defined in {files[budget.name]}", file=budget.file,
                              line=budget.line)
        files[budget.name] = budget.file
    return budgets


def _load_file(path: str) -> list[Budget]:
    text = read_text(path, path, BudgetError)
    return parse_budgets(text, path, base=os.path.dirname(path))


def parse_budgets(text: str, file: str, base: str = "") -> list[Budget]:
    data, node = load_yaml(text, file, BudgetError)
    if not isinstance(data, dict):
        kind = "an empty file" if data is None else f"a {type(data).__name__}"
        raise BudgetError(f"expected a mapping with a 'budgets' list, got {kind}", file=file)
    top = key_lines(node)
    for key in data:
        if key != "budgets":
            raise BudgetError("unknown key (expected budgets)", file=file, line=top.get(str(key)), key=str(key))
    entries = data.get("budgets")
    if not isinstance(entries, list) or not entries:
        raise BudgetError("expected a non-empty list of budgets", file=file, line=top.get("budgets"),
                          key="budgets")
    if len(entries) > MAX_BUDGETS:
        raise BudgetError(f"{len(entries):,} budgets; at most {MAX_BUDGETS:,}", file=file, key="budgets")
    nodes = items(child(node, "budgets"))
    budgets, seen = [], {}
    for index, entry in enumerate(entries, 1):
        entry_node = nodes[index - 1] if index <= len(nodes) else None
        budget = _entry(entry, index, file, entry_node, base)
        if budget.name in seen:
            raise BudgetError(f"duplicate budget name {show(budget.name)} (first at budget {seen[budget.name]})",
                              file=file, line=budget.line, entry=index, name=budget.name, key="name")
        seen[budget.name] = index
        budgets.append(budget)
    return budgets


def _entry(entry: object, index: int, file: str, node, base: str) -> Budget:
    lines = key_lines(node)
    name = entry.get("name") if isinstance(entry, dict) and isinstance(entry.get("name"), str) else None

    def fail(message: str, key: str | None = None) -> BudgetError:
        return BudgetError(message, file=file, line=lines.get(key or "") or line_of(node), entry=index, name=name,
                           key=key)

    if not isinstance(entry, dict):
        raise fail(f"expected a mapping with name, model and max_ limits, got {show(entry)}")
    for key in entry:
        if key not in ENTRY_KEYS:
            raise fail(f"unknown key (expected {', '.join(ENTRY_KEYS)})", str(key))
    for key in ("name", "model"):
        if not isinstance(entry.get(key), str) or not entry[key].strip():
            raise fail(f"expected a non-empty string, got {show(entry.get(key))}" if key in entry
                       else f"missing required key '{key}'", key)
    model = entry["model"].strip()
    if is_path(model) and not os.path.isabs(model):
        model = os.path.join(base, model)
    try:
        alpha = to_alpha(entry.get("alpha", "1.0"))
    except ConfigError as exc:
        raise fail(str(exc), "alpha") from None
    limits, metric_lines = [], []
    for key, metric in LIMIT_KEYS.items():
        if key in entry:
            try:
                limits.append((metric.name, metric.parse_limit(entry[key])))
            except UnitError as exc:
                raise fail(str(exc), key) from None
            metric_lines.append((metric.name, lines.get(key) or line_of(node)))
    if not limits:
        raise fail(f"no limit: give at least one of {', '.join(LIMIT_KEYS)}")
    profile = entry.get("profile")
    if profile is not None:
        if not isinstance(profile, str) or not profile.strip() or "\x00" in profile:
            raise fail(f"expected the path of a latency profile, got {show(profile)}", "profile")
        profile = profile if os.path.isabs(profile) else os.path.join(base, profile)
        # here, where the budget's file and line are known, rather than when a
        # check first predicts with it
        try:
            if not stat.S_ISREG(os.stat(profile).st_mode):
                raise fail(f"not a regular file: {profile}", "profile")
        except FileNotFoundError:
            raise fail(f"no such file: {profile}", "profile") from None
        except OSError as exc:
            raise fail(f"cannot read {profile}: {exc.strerror}", "profile") from None
    if "max_latency" in entry and profile is None:
        raise fail("max_latency needs 'profile': the latency profile to predict with (mnsize profile)", "max_latency")
    dtype = entry.get("dtype", "fp32")
    if dtype not in DTYPES:
        raise fail(f"expected one of {', '.join(DTYPES)}, got {show(dtype)}", "dtype")
    warn_at = None
    if "warn_at" in entry:
        try:
            warn_at = parse_percent(entry["warn_at"])
        except UnitError as exc:
            raise fail(str(exc), "warn_at") from None
    return Budget(
        name=entry["name"].strip(), model=model, alpha=alpha, resolution=_resolution(entry, fail),
        classes=_classes(entry, fail), dtype=dtype, limits=Limits(limits), warn_at=warn_at, profile=profile, file=file,
        line=line_of(node), metric_lines=tuple(metric_lines))


def _resolution(entry: dict, fail) -> tuple[int, int] | None:
    if "resolution" not in entry:
        return None
    value = entry["resolution"]
    sides = value if isinstance(value, list) and len(value) == 2 else [value, value]
    if not all(isinstance(s, int) and not isinstance(s, bool) and 1 <= s <= MAX_SIDE for s in sides):
        raise fail(f"expected a resolution such as 224 or [320, 240], got {show(value)}", "resolution")
    return (sides[0], sides[1])


def _classes(entry: dict, fail) -> int | None:
    value = entry.get("classes")
    if value is None and "classes" not in entry:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_CHANNELS:
        raise fail(f"expected an integer from 1 to {MAX_CHANNELS:,}, got {show(value)}", "classes")
    return value
