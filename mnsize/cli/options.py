"""click parameter types and the options every model command shares.

Each type fails with one clear sentence naming the option and the value."""

from __future__ import annotations

import math
import re
from fractions import Fraction

import click

from ..bounds import MAX_CHANNELS, MAX_SIDE
from ..errors import ConfigError, show
from ..expand import to_alpha
from ..metrics import METRICS, Limits, Metric
from ..units import UnitError, parse_alphas, parse_decimal, parse_percent, parse_resolutions, parse_whole


class AlphaType(click.ParamType):
    """A width multiplier, kept exact: '0.35' becomes Fraction(7, 20)."""

    name = "alpha"

    def convert(self, value, param, ctx):
        if isinstance(value, Fraction):
            return value
        try:
            return to_alpha(value)
        except ConfigError as exc:
            self.fail(str(exc), param, ctx)


class RhoType(click.ParamType):
    """A resolution multiplier: a positive number in plain decimal (exact)."""

    name = "rho"

    def convert(self, value, param, ctx):
        if isinstance(value, Fraction):
            return value
        try:
            rho = parse_decimal(str(value), "rho")
        except UnitError:
            self.fail(f"rho must be a positive number such as 0.571, got {show(value)}", param, ctx)
        if not 0 < rho <= 100:
            self.fail(f"rho must be > 0 and <= 100, got {show(value)}", param, ctx)
        return rho


class WholeRange(click.IntRange):
    """click.IntRange over whole numbers in plain decimal digits: no '1_000',
    no sign, and no number too long to convert (Python stops at 4,300 digits)."""

    name = "integer"

    def convert(self, value, param, ctx):
        number = value
        if isinstance(value, str):
            try:
                number = parse_whole(value, self.name)
            except UnitError:
                number = None
        if isinstance(number, bool) or not isinstance(number, int) or \
                (self.min is not None and number < self.min) or (self.max is not None and number > self.max):
            self.fail(f"expected a whole number{self._bounds()}, got {show(value)}", param, ctx)
        return number

    def _bounds(self) -> str:
        if self.min is not None and self.max is not None:
            return f" from {self.min:,} to {self.max:,}"
        return f" of at least {self.min:,}" if self.min is not None else ""


#: --classes, wherever a command takes it: as many as a spec file may declare
CLASSES = WholeRange(1, MAX_CHANNELS)

_RES = re.compile(r"^\s*([0-9]+)\s*(?:[x×X]\s*([0-9]+))?\s*$")


class ResolutionType(click.ParamType):
    """'224' (square) or '320x240' (height x width)."""

    name = "resolution"

    def convert(self, value, param, ctx):
        if isinstance(value, tuple):
            return value
        match = _RES.match(str(value))
        if not match:
            self.fail(f"expected a resolution such as 224 or 320x240 (H x W), got {show(value)}", param, ctx)
        try:  # as --resolutions reads a side: plain digits, no leading zero, bounded in length
            sides = [parse_whole(side, "resolution") for side in match.groups() if side is not None]
        except UnitError as exc:
            self.fail(str(exc), param, ctx)
        if not all(1 <= side <= MAX_SIDE for side in sides):
            self.fail(f"each side must be between 1 and {MAX_SIDE:,}, got {show(value)}", param, ctx)
        return (sides[0], sides[-1])


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


class LimitType(click.ParamType):
    """A limit on one metric, written in its unit (150M, 2MB, 8ms), as the
    integer the metric is counted in (mnsize.metrics)."""

    def __init__(self, metric: Metric) -> None:
        self.metric = metric
        self.name = metric.unit

    def convert(self, value, param, ctx):
        if isinstance(value, int):
            return value
        try:
            return self.metric.parse_limit(value)
        except UnitError as exc:
            self.fail(str(exc), param, ctx)


def limit_options(*names: str, help_prefix: str = ""):
    """--max-<metric> for each metric named (mnsize.metrics), as
    ``max_<metric>`` parameters; ``given_limits`` gathers them."""
    def decorate(fn):
        for name in reversed(names):
            metric = METRICS[name]
            text = metric.limit_help[0].upper() + metric.limit_help[1:] if not help_prefix else \
                f"{help_prefix}{metric.limit_help}"
            fn = click.option(metric.option, f"max_{name}", type=LimitType(metric), help=f"{text}.")(fn)
        return fn
    return decorate


def given_limits(params: dict) -> Limits:
    """The limits among a command's parameters, taken out of ``params``."""
    return Limits((name, params.pop(f"max_{name}", None)) for name in METRICS)


def _convention(ctx, param, value):
    from ..conventions import CONVENTIONS

    return CONVENTIONS[value]


def convention_option(fn):
    """--convention: count as the paper does, or as another tool does."""
    from ..conventions import CONVENTIONS

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
        click.option("--classes", type=CLASSES, default=None,
                     help="Classes of the final FC layer. [default: the spec's]"),
    ]
    for decorator in reversed(decorators):
        fn = decorator(fn)
    return fn


def finite(ctx, param, value):
    """A FloatRange option's callback refusing nan, which FloatRange lets
    through (every comparison with it is false)."""
    if value is not None and not math.isfinite(value):
        raise click.BadParameter(f"expected a finite number, got {value}", ctx, param)
    return value
