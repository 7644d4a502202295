"""The metrics a model is sized and gated by, each defined once: its name,
label, unit, how a limit on it is written and parsed, and how a value is
shown. `fit`'s and `check`'s options, budgets files' keys, baselines and every
report read this table; none keeps a list of its own.

Limits are inclusive upper bounds in the metric's own unit: a count, bytes at
the configuration's dtype, or whole microseconds for latency.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Protocol

from .units import format_bytes, format_count, microseconds, parse_quantity


@dataclass(frozen=True)
class Metric:
    name: str          # the key in JSON and baselines: madds, params, size, activations, latency
    label: str         # what reports call it
    unit: str          # how a limit is written (mnsize.units.parse_quantity): count, bytes or time
    unit_name: str     # the unit of its values, as the JSON reports name it
    limit_help: str    # an option's help: what a limit on it is
    digits: int = 1    # significant decimals when a count is shown short (1.32M params)

    @property
    def budget_key(self) -> str:
        """The key of a limit on it in a budgets file: max_madds."""
        return f"max_{self.name}"

    @property
    def option(self) -> str:
        """The command-line option of a limit on it: --max-madds."""
        return f"--max-{self.name}"

    @property
    def per_dtype(self) -> bool:
        """Whether its values are bytes, and so depend on the dtype."""
        return self.unit == "bytes"

    def parse_limit(self, text: object) -> int:
        """A limit as written ('150M', '2MB', '8ms') in the metric's unit."""
        value = parse_quantity(text, self.unit)
        return microseconds(value) if self.unit == "time" else value

    def format(self, value: int) -> str:
        """A value, short: 149.5M, 1.32M, 2.1MB, 8.00ms."""
        if self.unit == "time":
            return f"{value / 1000:.2f}ms"
        return format_bytes(value) if self.unit == "bytes" else format_count(value, self.digits)


METRICS: dict[str, Metric] = {m.name: m for m in (
    Metric("madds", "mult-adds", "count", "count", "a mult-adds limit, e.g. 150M"),
    Metric("params", "params", "count", "count", "a parameter limit, e.g. 1.5M", digits=2),
    Metric("size", "size", "bytes", "bytes", "a stored size limit, e.g. 2MB (with --dtype)"),
    Metric("activations", "activations", "bytes", "bytes",
           "a peak activation memory limit, e.g. 512KiB (with --dtype)"),
    Metric("latency", "latency", "time", "microseconds", "a latency limit, e.g. 8ms, predicted by --profile"),
)}

#: the metrics counted from the network alone (latency needs a device profile)
COUNTED = tuple(name for name in METRICS if name != "latency")

#: what `fit` ranks the models within budget by
OBJECTIVES = ("madds", "params", "top1")

#: the grid `fit` searches unless told otherwise: alpha 0.25 to 1.00 by 0.05,
#: resolution 96 to 224 by 16
DEFAULT_ALPHAS = "0.25:1.00:0.05"
DEFAULT_RESOLUTIONS = "96:224:16"


class Measured(Protocol):
    def metric(self, name: str) -> int | None: ...


class Limits:
    """Inclusive upper limits by metric name; a metric with no limit is not
    held to one. ``Limits(madds=150_000_000, params=3_000_000)``, or from
    (metric, limit) pairs."""

    __slots__ = ("_items",)

    def __init__(self, pairs: Iterable[tuple[str, int | None]] = (), **limits: int | None) -> None:
        given = {**dict(pairs), **limits}
        unknown = [name for name in given if name not in METRICS]
        if unknown:
            raise KeyError(f"no metric {unknown[0]!r}; the metrics are {', '.join(METRICS)}")
        self._items = tuple((name, given[name]) for name in METRICS if given.get(name) is not None)

    def items(self) -> tuple[tuple[str, int], ...]:
        """(metric, limit) for every limit set, in the order of METRICS."""
        return self._items

    def get(self, name: str) -> int | None:
        return dict(self._items).get(name)

    def admit(self, model: Measured) -> bool:
        """Whether every limit holds for ``model`` (anything with ``metric(name)``)."""
        return all(model.metric(name) <= limit for name, limit in self._items)

    def __bool__(self) -> bool:
        return bool(self._items)

    def __iter__(self):
        return iter(self._items)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Limits) and self._items == other._items

    def __hash__(self) -> int:
        return hash(self._items)

    def __repr__(self) -> str:
        return f"Limits({', '.join(f'{name}={limit!r}' for name, limit in self._items)})"
