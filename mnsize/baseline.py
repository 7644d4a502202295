"""Baseline files: every budget's values on one day, for `check --baseline`.

    {"format": "mnsize-baseline/2", "convention": "paper",
     "budgets": {"phone-backbone": {"dtype": "int8", "madds": 149497088, ...}}}

Mult-adds and params are counted by the convention the baseline names, so a
later check compares like with like; a /1 file (before conventions were
recorded) counted as the paper does. The reader trusts nothing: at most
16 MiB of a regular file, strict JSON (no NaN or Infinity), no key twice,
metric values whole numbers of at most 30 digits.
"""

from __future__ import annotations

import json

from .gate import measure
from .conventions import CONVENTIONS
from .errors import MnsizeError, show
from .bounds import MAX_BASELINE_BYTES, MAX_BASELINE_DIGITS
from .units import DTYPES
from .yamlio import read_bytes

BASELINE_FORMAT = "mnsize-baseline/2"
FORMATS = ("mnsize-baseline/1", BASELINE_FORMAT)


def convention_name(convention) -> str:
    """The name of a convention given as a mnsize.conventions.Convention, a
    name or None (the paper's)."""
    return "paper" if convention is None else getattr(convention, "name", convention)


def baseline_json(budgets: list, convention=None, cache: dict | None = None) -> dict:
    """Today's values of every metric of every budget, mult-adds and params
    counted by ``convention`` (a mnsize.conventions.Convention, a name, or
    None for the paper's), for --write-baseline; ``cache`` as check.check's."""
    name = convention_name(convention)
    counting = CONVENTIONS[name] if convention is not None else None
    cache = {} if cache is None else cache
    return {"format": BASELINE_FORMAT, "convention": name,
            "budgets": {b.name: {"dtype": b.dtype, **measure(b, cache, counting)[0]} for b in budgets}}


class _Refused(ValueError):
    pass


def _whole(text: str) -> int:
    if len(text.lstrip("-")) > MAX_BASELINE_DIGITS:
        raise _Refused(f"a number of {len(text.lstrip('-')):,} digits (at most {MAX_BASELINE_DIGITS})")
    return int(text)


def _constant(text: str):
    raise _Refused(f"{text} is not a JSON number")


def _unique(pairs: list[tuple[str, object]]) -> dict:
    data = {}
    for key, value in pairs:
        if key in data:
            raise _Refused(f"duplicate key {show(key)}")
        data[key] = value
    return data


def read_baseline(path: str, convention=None) -> dict[str, dict[str, int]]:
    """Each budget's recorded values (and its dtype). With ``convention``, a
    baseline counted by another convention is refused: its mult-adds and
    params are not comparable with this run's."""
    raw = read_bytes(path, path, MAX_BASELINE_BYTES,
                     missing="no such baseline file (write one with --write-baseline)")
    try:
        data = json.loads(raw.decode("utf-8"), parse_int=_whole, parse_constant=_constant,
                          object_pairs_hook=_unique)
    except UnicodeDecodeError as exc:
        raise MnsizeError(f"{path}: not a baseline file: not UTF-8 text (byte {exc.start})") from None
    except _Refused as exc:
        raise MnsizeError(f"{path}: not a baseline file: {exc}") from None
    except json.JSONDecodeError as exc:
        raise MnsizeError(f"{path}: not a baseline file: {exc}") from None
    except RecursionError:
        raise MnsizeError(f"{path}: not a baseline file: nested too deeply") from None
    if not isinstance(data, dict) or data.get("format") not in FORMATS or not isinstance(data.get("budgets"), dict):
        raise MnsizeError(f"{path}: not an mnsize baseline (expected \"format\": \"{BASELINE_FORMAT}\")")
    # every value has a place below, no deeper than a budget's metrics: anything
    # nested further is refused as a wrong type
    allowed = ("format", "convention", "budgets") if data["format"] == BASELINE_FORMAT else ("format", "budgets")
    for key in data:
        if key not in allowed:
            raise MnsizeError(f"{path}: unknown key {show(key)} (expected {', '.join(allowed)})")
    # a /1 file predates the key and counted as the paper does
    recorded = data.get("convention") if data["format"] == BASELINE_FORMAT else "paper"
    if not isinstance(recorded, str) or recorded not in CONVENTIONS:
        raise MnsizeError(f"{path}: \"convention\": expected one of {', '.join(CONVENTIONS)}, got {show(recorded)}")
    if convention is not None and recorded != convention_name(convention):
        raise MnsizeError(f"{path}: the baseline counts by the {recorded} convention, this run by "
                          f"{convention_name(convention)}: check with --convention {recorded}, or write the "
                          f"baseline again")
    baseline = {}
    for name, values in data["budgets"].items():
        if not isinstance(values, dict):
            raise MnsizeError(f"{path}: budget {show(name)}: expected an object of metric values")
        metrics = {k: v for k, v in values.items() if k != "dtype"}
        if not all(isinstance(v, int) and not isinstance(v, bool) and v >= 0 for v in metrics.values()):
            raise MnsizeError(f"{path}: budget {show(name)}: metric values must be non-negative integers")
        dtype = values.get("dtype", "fp32")
        if dtype not in DTYPES:
            raise MnsizeError(f"{path}: budget {show(name)}: \"dtype\": expected one of {', '.join(DTYPES)}, "
                              f"got {show(dtype)}")
        baseline[name] = {**metrics, "dtype": dtype}
    return baseline
