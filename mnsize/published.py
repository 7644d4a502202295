"""Published accuracy of released checkpoints (configs/published.yaml): data
shown beside mnsize's own figures, never used as a count. The file keeps each
checkpoint's top-5 as its source lists it; mnsize reads the top-1 alone."""

from __future__ import annotations

import os
from fractions import Fraction
from functools import lru_cache

from .errors import MnsizeError

Key = tuple[Fraction, tuple[int, int]]


def table_path() -> str:
    """The file the published figures are read from."""
    from .models import _configs  # the one place that knows where configs/ lies

    return os.path.join(_configs(), "published.yaml")


@lru_cache(maxsize=1)
def _table() -> dict[str, dict[Key, float]]:
    import yaml

    path = table_path()
    try:
        with open(path, encoding="utf-8") as file:
            data = yaml.safe_load(file)
        table = {}
        for model, entry in data.items():
            table[model] = {
                (Fraction(str(row["alpha"])), _resolution(row["resolution"])): float(row["top1"])
                for row in entry["checkpoints"]}
        return table
    except (OSError, yaml.YAMLError, KeyError, TypeError, ValueError, AttributeError) as exc:
        raise MnsizeError(f"configs/published.yaml: unreadable ({exc})") from None


def _resolution(value) -> tuple[int, int]:
    return (value, value) if isinstance(value, int) else tuple(value)


def top1_table(model: str) -> dict[Key, float]:
    """{(alpha, (H, W)): top-1 %} of the released checkpoints of ``model``."""
    return dict(_table().get(model, {}))
