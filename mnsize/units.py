"""One parser and one formatter for the quantities budgets are written in.

Counts (mult-adds, parameters): ``150M``, ``1.5G``, ``300k``, ``4.2M`` or a
plain integer; SI prefixes (k = 10^3, M = 10^6, G = 10^9, T = 10^12).
Sizes: ``2MB`` (SI, 2,000,000 bytes), ``512KiB`` (binary, 524,288 bytes),
``300B`` or a plain integer of bytes.
Durations: ``10ms``, ``1.5s``, ``250us``; returned in milliseconds.

Parsing is exact (``Fraction``): ``4.2M`` is 4,200,000, never 4,199,999.
"""

from __future__ import annotations

import re
from fractions import Fraction

from .errors import MnsizeError, show

_NUMBER = r"(?P<number>\d+(?:\.\d*)?|\.\d+)(?:[eE](?P<exp>[+-]?\d+))?"
_PATTERN = re.compile(rf"^\s*{_NUMBER}\s*(?P<unit>[A-Za-zµ]*)\s*$")

#: bytes per stored number of each dtype a size or activation budget can use
DTYPE_BYTES = {"fp32": 4, "fp16": 2, "int8": 1}
DTYPES = tuple(DTYPE_BYTES)

COUNT_UNITS = {"": 1, "k": 10**3, "m": 10**6, "g": 10**9, "t": 10**12}
BYTE_UNITS = {
    "": 1, "b": 1,
    "kb": 10**3, "mb": 10**6, "gb": 10**9, "tb": 10**12,
    "kib": 2**10, "mib": 2**20, "gib": 2**30, "tib": 2**40,
}
TIME_UNITS_MS = {
    "ns": Fraction(1, 10**6), "us": Fraction(1, 1000), "µs": Fraction(1, 1000),
    "ms": Fraction(1), "s": Fraction(1000),
}

KINDS = {
    "count": ("a count such as 150M, 1.5G, 300k or 150000000", COUNT_UNITS, "k, M, G, T"),
    "bytes": ("a size such as 2MB, 512KiB or 300000", BYTE_UNITS, "B, kB, MB, GB, TB, KiB, MiB, GiB, TiB"),
    "time": ("a duration such as 10ms, 1.5s or 250us", TIME_UNITS_MS, "ns, us, ms, s"),
}


class UnitError(MnsizeError):
    pass


def parse_quantity(text: object, kind: str) -> int | Fraction:
    """Parse ``text`` as a quantity of ``kind`` ('count', 'bytes' or 'time').

    Counts and sizes come back as exact ``int`` (a fractional result such as
    ``1.5`` items is refused); durations as a ``Fraction`` of milliseconds.
    Negative values, empty strings and unknown units raise ``UnitError``.
    """
    expected, units, known = KINDS[kind]
    if isinstance(text, bool):
        raise UnitError(f"expected {expected}, got {show(text)}")
    if isinstance(text, int):
        text = str(text)
    if isinstance(text, float):
        text = repr(text)
    if not isinstance(text, str):
        raise UnitError(f"expected {expected}, got {show(text)}")
    match = _PATTERN.match(text)
    if not match:
        raise UnitError(f"expected {expected}, got {show(text)}")
    unit = match["unit"]
    key = unit if kind == "time" else unit.lower()
    if key not in units:
        raise UnitError(f"unknown unit {show(unit)} in {show(text)}: use one of {known}")
    exponent = int(match["exp"] or 0)
    if abs(exponent) > 30:
        raise UnitError(f"exponent out of range in {show(text)}")
    value = Fraction(match["number"]) * Fraction(10) ** exponent * units[key]
    if kind == "time":
        return value
    if value.denominator != 1:
        raise UnitError(f"{show(text)} is not a whole number of {'bytes' if kind == 'bytes' else 'items'}")
    return int(value)


def format_count(value: int | float, digits: int = 1) -> str:
    """Human form of a count: 568740352 -> '568.7M', 4210088 -> '4.2M'."""
    for size, suffix in ((10**12, "T"), (10**9, "G"), (10**6, "M"), (10**3, "k")):
        if abs(value) >= size:
            return f"{value / size:.{digits}f}{suffix}"
    return f"{value:,}" if isinstance(value, int) else f"{value:.{digits}f}"


def format_bytes(value: int, digits: int = 1) -> str:
    """Human form of a size in binary units: 1320648 -> '1.3MiB'."""
    for size, suffix in ((2**40, "TiB"), (2**30, "GiB"), (2**20, "MiB"), (2**10, "KiB")):
        if abs(value) >= size:
            return f"{value / size:.{digits}f}{suffix}"
    return f"{value}B"


# --------------------------------------------------------------------------- grids

MAX_GRID = 10_000


def _decimal(text: str, what: str) -> Fraction:
    try:
        value = Fraction(text.strip())
    except (ValueError, ZeroDivisionError):
        raise UnitError(f"{what}: {show(text.strip())} is not a number") from None
    return value


def _steps(text: str, what: str, parse) -> list:
    """'a,b,c' or 'start:stop:step' (stop included when a step lands on it)."""
    if ":" in text:
        parts = text.split(":")
        if len(parts) != 3:
            raise UnitError(f"{what}: a range is start:stop:step, got {show(text)}")
        start, stop, step = (parse(p) for p in parts)
        if step <= 0:
            raise UnitError(f"{what}: the step must be positive, got {show(text)}")
        if stop < start:
            raise UnitError(f"{what}: the range {show(text)} runs backwards (stop below start)")
        count = int((stop - start) // step) + 1
        if count > MAX_GRID:
            raise UnitError(f"{what}: {show(text)} has {count:,} values; at most {MAX_GRID:,}")
        return [start + i * step for i in range(count)]
    values = [parse(p) for p in text.split(",") if p.strip()]
    if not values:
        raise UnitError(f"{what}: no values in {show(text)}")
    if len(values) > MAX_GRID:
        raise UnitError(f"{what}: {len(values):,} values; at most {MAX_GRID:,}")
    return values


def parse_alphas(text: str) -> list[Fraction]:
    """Width multipliers: '0.25,0.5,0.75,1.0' or '0.10:1.40:0.01' (exact)."""
    values = _steps(text, "alphas", lambda p: _decimal(p, "alphas"))
    bad = [v for v in values if not 0 < v <= 100]
    if bad:
        raise UnitError(f"alphas: every alpha must be > 0 and <= 100, got {float(bad[0]):g}")
    return list(dict.fromkeys(values))


def parse_resolutions(text: str) -> list[tuple[int, int]]:
    """Resolutions: '224,192,160' or '32:512:8' (square), or '320x240' entries."""
    def side(p: str) -> int:
        p = p.strip()
        if not p.isdigit():
            raise UnitError(f"resolutions: {show(p)} is not a whole number of pixels")
        return int(p)

    if ":" in text:
        sides = _steps(text, "resolutions", side)
        values = [(s, s) for s in sides]
    else:
        values = []
        for part in _steps(text, "resolutions", lambda p: p):
            h, x, w = part.strip().lower().replace("×", "x").partition("x")
            values.append((side(h), side(w) if x else side(h)))
    bad = [v for v in values if not (1 <= v[0] <= 1_000_000 and 1 <= v[1] <= 1_000_000)]
    if bad:
        raise UnitError(f"resolutions: each side must be between 1 and 1,000,000, got {bad[0][0]}x{bad[0][1]}")
    return list(dict.fromkeys(values))


def parse_percent(value: object) -> Fraction:
    """'90%' or a fraction such as 0.9, as an exact Fraction in (0, 10]."""
    if isinstance(value, bool) or not isinstance(value, (str, int, float)):
        raise UnitError(f"expected a percentage such as 90% or 5%, got {show(value)}")
    text = repr(value) if isinstance(value, float) else str(value).strip()
    try:
        share = Fraction(text[:-1]) / 100 if text.endswith("%") else Fraction(text)
    except (ValueError, ZeroDivisionError):
        raise UnitError(f"expected a percentage such as 90% or 5%, got {show(value)}") from None
    if not text.endswith("%") and share > 1:
        raise UnitError(f"write {text}% for a percentage, or a fraction such as 0.9; got {show(value)}")
    if not 0 <= share <= 10:
        raise UnitError(f"expected a percentage between 0% and 1000%, got {show(value)}")
    return share
