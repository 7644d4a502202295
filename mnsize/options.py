"""click parameter types and the options every model command shares.

Each type fails with one clear sentence naming the option and the value."""

from __future__ import annotations

import re
from fractions import Fraction

import click

from .expand import MAX_SIDE, to_alpha
from .units import UnitError, parse_alphas, parse_percent, parse_quantity, parse_resolutions


class AlphaType(click.ParamType):
    """A width multiplier, kept exact: '0.35' becomes Fraction(7, 20)."""

    name = "alpha"

    def convert(self, value, param, ctx):
        if isinstance(value, Fraction):
            return value
        try:
            return to_alpha(value)
        except ValueError as exc:
            self.fail(str(exc), param, ctx)


class RhoType(click.ParamType):
    """A resolution multiplier: a positive number (exact)."""

    name = "rho"

    def convert(self, value, param, ctx):
        if isinstance(value, Fraction):
            return value
        try:
            rho = Fraction(str(value).strip())
        except (ValueError, ZeroDivisionError):
            self.fail(f"rho must be a positive number, got {value!r}", param, ctx)
        if not 0 < rho <= 100:
            self.fail(f"rho must be > 0 and <= 100, got {value}", param, ctx)
        return rho


_RES = re.compile(r"^\s*(\d+)\s*(?:[x×X]\s*(\d+))?\s*$")


class ResolutionType(click.ParamType):
    """'224' (square) or '320x240' (height x width)."""

    name = "resolution"

    def convert(self, value, param, ctx):
        if isinstance(value, tuple):
            return value
        match = _RES.match(str(value))
        if not match:
            self.fail(f"expected a resolution such as 224 or 320x240 (H x W), got {value!r}", param, ctx)
        height = int(match[1])
        width = int(match[2]) if match[2] is not None else height
        if not (1 <= height <= MAX_SIDE and 1 <= width <= MAX_SIDE):
            self.fail(f"each side must be between 1 and {MAX_SIDE:,}, got {value!r}", param, ctx)
        return (height, width)


class ParsedType(click.ParamType):
    """A value read by one of mnsize.units' parsers: a budget in units (150M,
    2MB, 10ms), a list ('0.25,0.5') or an inclusive range ('0.10:1.40:0.01') of
    alphas or resolutions, a percentage. A UnitError becomes click's failure."""

    def __init__(self, name: str, parse) -> None:
        self.name = name
        self.parse = parse

    def convert(self, value, param, ctx):
        if not isinstance(value, str):
            return value
        try:
            return self.parse(value)
        except UnitError as exc:
            self.fail(str(exc), param, ctx)


ALPHA_GRID = ParsedType("alphas", parse_alphas)
PERCENT = ParsedType("percent", parse_percent)
RESOLUTION_GRID = ParsedType("resolutions", parse_resolutions)


class FilePathType(click.ParamType):
    """A file name: any string an operating system can open (no NUL byte, not empty)."""

    name = "file"

    def convert(self, value, param, ctx):
        text = str(value)
        if not text or "\x00" in text:
            self.fail(f"not a usable file name: {text!r}", param, ctx)
        return text


FILE = FilePathType()
COUNT = ParsedType("count", lambda text: parse_quantity(text, "count"))
BYTES = ParsedType("bytes", lambda text: parse_quantity(text, "bytes"))
DURATION = ParsedType("time", lambda text: parse_quantity(text, "time"))


def _convention(ctx, param, value):
    from .conventions import CONVENTIONS

    return CONVENTIONS[value]


def convention_option(fn):
    """--convention: count as the paper does, or as another tool does."""
    from .conventions import CONVENTIONS

    return click.option("--convention", type=click.Choice(list(CONVENTIONS)), default="paper", show_default=True,
                        callback=_convention,
                        help="Count as the paper does, or reproduce another tool's numbers "
                             "(see 'mnsize explain').")(fn)


def model_options(fn):
    """--model, --alpha, --res/--rho and --classes, shared by every model command."""
    decorators = [
        click.option("--model", "-m", default="mobilenet_v1", show_default=True, metavar="NAME|PATH",
                     help="A built-in spec name or the path of a spec file."),
        click.option("--alpha", "-a", type=AlphaType(), default="1.0", show_default=True,
                     help="Width multiplier α (any positive number, e.g. 0.75 or 1.4)."),
        click.option("--res", "-r", "resolution", type=ResolutionType(), default=None,
                     help="Input resolution: 224, or 320x240 for H x W. [default: the spec's]"),
        click.option("--rho", type=RhoType(), default=None,
                     help="Resolution multiplier ρ: resolution = round(ρ × the spec's default)."),
        click.option("--classes", type=click.IntRange(min=1), default=None,
                     help="Classes of the final FC layer. [default: the spec's]"),
    ]
    for decorator in reversed(decorators):
        fn = decorator(fn)
    return fn
