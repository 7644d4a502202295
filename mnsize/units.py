"""One parser and one formatter for the quantities budgets are written in.

Counts (mult-adds, parameters): ``150M``, ``1.5G``, ``300k``, ``4.2M`` or a
plain integer; SI prefixes (k = 10^3, M = 10^6, G = 10^9, T = 10^12).
Sizes: ``2MB`` (SI, 2,000,000 bytes), ``512KiB`` (binary, 524,288 bytes),
``300B`` or a plain integer of bytes.
Durations: ``10ms``, ``1.5s``, ``250us``; returned in milliseconds.

Parsing is exact (``Fraction``): ``4.2M`` is 4,200,000, never 4,199,999.
Numbers are plain decimal (``parse_decimal``): ``1_000``, ``0x10``, ``017``
and ``1:30`` are refused, not read as Python or YAML 1.1 would read them.
"""

from __future__ import annotations

import re
from fractions import Fraction

from .bounds import MAX_ALPHA, MAX_EXPONENT, MAX_GRID_VALUES, MAX_NUMBER_CHARS, MAX_SIDE
from .errors import MnsizeError, show

#: plain decimal only: no underscores, no 0x/0o/0b, no leading zeros (017 is
#: 15 to a YAML 1.1 reader), no 1:30 (90), no fractions, nan or inf, and
#: ASCII digits only (Python's int() also takes '٣')
_DIGITS = r"(?:(?:0|[1-9][0-9]*)(?:\.[0-9]*)?|\.[0-9]+)"
_EXPONENT = r"(?:[eE](?P<exp>[-+]?[0-9]+))?"
_DECIMAL = re.compile(rf"[-+]?{_DIGITS}{_EXPONENT}")
_PATTERN = re.compile(rf"^\s*(?P<number>{_DIGITS}){_EXPONENT}\s*(?P<unit>[A-Za-zµ]*)\s*$")

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


def parse_decimal(text: str, what: str) -> Fraction:
    """A number written in plain decimal ('0.35', '-2', '1e-3', '.5'), exact.

    Every other form Python or YAML 1.1 would take is refused: '1_0', '7/20',
    '0x10', '017', '1:30', 'nan', 'inf', an exponent beyond +-30 or more than
    100 characters."""
    if not isinstance(text, str):
        raise UnitError(f"{what}: {show(text)} is not a number")
    text = text.strip()
    match = _DECIMAL.fullmatch(text) if len(text) <= MAX_NUMBER_CHARS else None
    if not match:
        raise UnitError(f"{what}: {show(text)} is not a number")
    if match["exp"] and abs(int(match["exp"])) > MAX_EXPONENT:
        raise UnitError(f"{what}: the exponent of {show(text)} is out of range")
    return Fraction(text)


def parse_whole(text: str, what: str) -> int:
    """A whole number written in plain decimal digits, without a sign or a
    leading zero ('224')."""
    text = text.strip()
    if not re.fullmatch(r"0|[1-9][0-9]*", text) or len(text) > MAX_NUMBER_CHARS:
        raise UnitError(f"{what}: {show(text)} is not a whole number")
    return int(text)


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
    if not match or len(match["number"]) > MAX_NUMBER_CHARS:
        raise UnitError(f"expected {expected}, got {show(text)}")
    unit = match["unit"]
    key = unit if kind == "time" else unit.lower()
    if key not in units:
        raise UnitError(f"unknown unit {show(unit)} in {show(text)}: use one of {known}")
    exponent = int(match["exp"] or 0)
    if abs(exponent) > MAX_EXPONENT:
        raise UnitError(f"exponent out of range in {show(text)}")
    value = Fraction(match["number"]) * Fraction(10) ** exponent * units[key]
    if kind == "time":
        return value
    if value.denominator != 1:
        raise UnitError(f"{show(text)} is not a whole number of {'bytes' if kind == 'bytes' else 'items'}")
    return int(value)


def microseconds(milliseconds: Fraction) -> int:
    """A latency limit in whole microseconds, rounded down: the stricter side
    of a limit typed with a fraction of a microsecond."""
    return int(milliseconds * 1000)


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
        if count > MAX_GRID_VALUES:
            raise UnitError(f"{what}: {show(text)} has {count:,} values; at most {MAX_GRID_VALUES:,}")
        return [start + i * step for i in range(count)]
    values = [parse(p) for p in text.split(",") if p.strip()]
    if not values:
        raise UnitError(f"{what}: no values in {show(text)}")
    if len(values) > MAX_GRID_VALUES:
        raise UnitError(f"{what}: {len(values):,} values; at most {MAX_GRID_VALUES:,}")
    return values


def parse_alphas(text: str) -> list[Fraction]:
    """Width multipliers: '0.25,0.5,0.75,1.0' or '0.10:1.40:0.01' (exact)."""
    values = _steps(text, "alphas", lambda p: parse_decimal(p, "alphas"))
    bad = [v for v in values if not 0 < v <= MAX_ALPHA]
    if bad:
        raise UnitError(f"alphas: every alpha must be > 0 and <= {MAX_ALPHA}, got {float(bad[0]):g}")
    return list(dict.fromkeys(values))


def parse_resolutions(text: str) -> list[tuple[int, int]]:
    """Resolutions: '224,192,160' or '32:512:8' (square), or '320x240' entries."""
    def side(p: str) -> int:
        try:
            return parse_whole(p, "resolutions")
        except UnitError:
            raise UnitError(f"resolutions: {show(p.strip())} is not a whole number of pixels") from None

    if ":" in text:
        sides = _steps(text, "resolutions", side)
        values = [(s, s) for s in sides]
    else:
        values = []
        for part in _steps(text, "resolutions", lambda p: p):
            h, x, w = part.strip().lower().replace("×", "x").partition("x")
            values.append((side(h), side(w) if x else side(h)))
    bad = [v for v in values if not (1 <= v[0] <= MAX_SIDE and 1 <= v[1] <= MAX_SIDE)]
    if bad:
        raise UnitError(f"resolutions: each side must be between 1 and 1,000,000, got {bad[0][0]}x{bad[0][1]}")
    return list(dict.fromkeys(values))


def parse_percent(value: object) -> Fraction:
    """'90%' or a fraction such as 0.9, as an exact Fraction in (0, 10]."""
    if isinstance(value, bool) or not isinstance(value, (str, int, float)):
        raise UnitError(f"expected a percentage such as 90% or 5%, got {show(value)}")
    text = repr(value) if isinstance(value, float) else str(value).strip()
    try:
        share = parse_decimal(text[:-1], "") / 100 if text.endswith("%") else parse_decimal(text, "")
    except UnitError:
        raise UnitError(f"expected a percentage such as 90% or 5%, got {show(value)}") from None
    if not text.endswith("%") and share > 1:
        raise UnitError(f"write {text}% for a percentage, or a fraction such as 0.9; got {show(value)}")
    if not 0 <= share <= 10:
        raise UnitError(f"expected a percentage between 0% and 1000%, got {show(value)}")
    return share
