"""expand(spec, alpha, resolution) -> tuple[Layer]: where alpha disappears.

The builder walks the spec's rows carrying the running state (channels and
spatial size) and emits concrete layers whose every channel count and H x W is
resolved. Everything downstream (costs, rendering, the torch builder) sees only
these final numbers.

Spatial sizes follow SAME padding: out = ceil(in / stride), for convolutions
(dilated ones too) and windowed pooling alike, unless a row gives its own
padding (Keras's MobileNet pads a strided layer's input on one side only).
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from fractions import Fraction

from .bounds import MAX_ALPHA, MAX_SIDE
from .errors import ConfigError, SpecError, show
from .spec import LayerSpec, Spec
from .units import UnitError, parse_decimal

Shape = tuple[int, int, int]  # (channels, height, width)

#: default block names: ir1, ir2, ... rather than inverted_residual1
SHORT_NAMES = {"inverted_residual": "ir"}


@dataclass(frozen=True)
class Layer:
    """One concrete layer: an operation with resolved input and output shapes.

    ``kind`` is one of conv, dw, pw, se, avgpool, maxpool, dropout, fc. ``block`` names
    the spec row instance it came from: a ``dwsep`` row yields ``<block>.dw``
    and ``<block>.pw``; an ``inverted_residual`` row ``<block>.expand`` (unless
    the hidden width equals the input's), ``<block>.dw``, ``<block>.se`` (with
    squeeze-and-excite) and ``<block>.project``, whose ``residual`` flag says
    the block's input is added to its output. ``kernel`` and ``stride`` are
    None where they do not apply (global pooling, squeeze-and-excite, dropout,
    fc); a windowed pooling layer has both. ``dilation`` spaces a convolution's
    kernel taps; ``groups`` splits its channels (C_in for a depthwise layer).
    A squeeze-and-excite layer squeezes to ``squeeze`` channels with ``se_act``
    between its two 1x1 convs and scales its input by ``gate`` of the result.
    ``drop_path`` is the probability that training drops the branch a
    residual layer's add closes (stochastic depth; nothing at inference).
    ``padding`` is the zeros a conv or depthwise layer adds before and after
    each side of its input where that is not SAME padding.
    """

    index: int
    name: str
    block: str
    kind: str
    in_shape: Shape
    out_shape: Shape
    kernel: int | None
    stride: int | None
    groups: int
    bias: bool
    bn: bool
    act: str
    position: int          # the spec row (1-based) this layer came from
    squeeze: int = 0       # se: the squeezed width
    residual: bool = False  # the block's input is added to this layer's output
    p: float = 0.0         # dropout: the probability
    dilation: int = 1      # conv, dw, pw: the spacing of the kernel's taps
    se_act: str = "relu"   # se: the activation between its two 1x1 convs
    gate: str = "hardsigmoid"  # se: the activation that scales the input
    drop_path: float = 0.0  # residual: the probability training drops the block's branch
    padding: tuple[int, int] | None = None  # conv, dw: zeros before and after each side (None: SAME)

    @property
    def activations(self) -> int:
        """Elements of its input and output: what a layer-by-layer runtime holds
        while this layer runs."""
        return elements(self.in_shape) + elements(self.out_shape)


def deployed(layers: tuple[Layer, ...]) -> tuple[Layer, ...]:
    """The layers as deployed: each BatchNorm folded into the conv before it
    (a conv with a bias in its place). Mult-adds are unchanged; parameters
    gain the folded biases."""
    return tuple(dataclasses.replace(lay, bn=False, bias=True) if lay.bn else lay for lay in layers)


def elements(shape: Shape) -> int:
    channels, height, width = shape
    return channels * height * width


@dataclass(frozen=True)
class Config:
    """What a user asked for: the model and its two multipliers, resolved."""

    model: str
    alpha: Fraction
    resolution: tuple[int, int]
    classes: int
    convention: str = "paper"


def to_alpha(value: object) -> Fraction:
    """An exact width multiplier from what the user typed ('0.35', 0.35,
    Fraction(7, 20)); text in plain decimal only (mnsize.units.parse_decimal)."""
    if isinstance(value, Fraction):
        alpha = value
    elif isinstance(value, bool):
        raise ConfigError(f"alpha must be a positive number, got {show(value)}")
    elif isinstance(value, int):
        alpha = Fraction(value)
    elif isinstance(value, (float, str)):
        try:
            alpha = parse_decimal(repr(value) if isinstance(value, float) else value, "alpha")
        except UnitError:
            raise ConfigError(f"alpha must be a positive number, got {show(value)}") from None
    else:
        raise ConfigError(f"alpha must be a positive number, got {show(value)}")
    if not 0 < alpha <= MAX_ALPHA:
        raise ConfigError(f"alpha must be > 0 and <= {MAX_ALPHA}, got {value}")
    return alpha


def resolution_from_rho(spec: Spec, rho: Fraction) -> tuple[int, int]:
    """The resolution multiplier: round(rho x the spec's default), halves up."""
    return tuple(max(1, math.floor(rho * side + Fraction(1, 2))) for side in spec.resolution)  # type: ignore[return-value]


def expand(spec: Spec, alpha: Fraction | float | str = 1, resolution: int | tuple[int, int] | None = None,
           classes: int | None = None, *, widths_only: bool = False) -> tuple[Layer, ...]:
    """Resolve every layer of ``spec`` at width multiplier ``alpha`` and input
    ``resolution`` (an int for square inputs, or (H, W); default: the spec's).

    ``widths_only`` is for a caller that reads the layers' widths and
    structure and sizes them spatially by other means (a search expands once
    at 1 x 1): a side that explicit padding would shrink below 1 is kept at 1
    instead of refused."""
    alpha = to_alpha(alpha)
    if resolution is None:
        resolution = spec.resolution
    elif isinstance(resolution, int):
        resolution = (resolution, resolution)
    if any(side < 1 or side > MAX_SIDE for side in resolution):
        raise ConfigError(f"resolution must be between 1 and {MAX_SIDE:,} on each side, got {resolution}")
    builder = _Builder(spec, alpha, classes if classes is not None else spec.classes, resolution, widths_only)
    shape: Shape = (spec.in_channels, *resolution)
    for row in spec.layers:
        for repeat in range(row.repeat):
            shape = builder.add(row, shape, repeat)
    return tuple(builder.layers)


class _Builder:
    def __init__(self, spec: Spec, alpha: Fraction, classes: int, resolution: tuple[int, int],
                 widths_only: bool = False) -> None:
        self.spec = spec
        self.widths_only = widths_only
        self.resolution = resolution  # the input's H x W, for messages
        self.alpha = alpha
        self.classes = classes
        self.layers: list[Layer] = []
        self.counts: dict[str, int] = {}
        self.names: set[str] = set()

    def scaled(self, row: LayerSpec, channels: int, key: str = "out") -> int:
        """The table's ``channels`` at this alpha, as the row's ``scale`` says."""
        if row.scale == "none":
            return channels
        alpha = max(Fraction(1), self.alpha) if row.scale == "up" else self.alpha
        rule = self.spec.rule(row)
        result = rule.apply(channels, alpha)
        if result < 1:
            raise SpecError(
                f"the {rule.describe()} width rule gives {result} channels for {key}={channels} "
                f"at alpha={float(self.alpha):g}",
                file=self.spec.file, line=row.line, layer=row.position, layer_label=row.label, key=key)
        return result

    def width(self, row: LayerSpec, c_in: int) -> int:
        if row.kind == "fc" and row.out == 0:
            return self.classes
        if row.t:  # an expansion of the input, already at this alpha
            return self.spec.rule(row).expanded(c_in, row.t)
        return self.scaled(row, row.out)

    def block_name(self, row: LayerSpec, repeat: int) -> str:
        if row.name:
            name = row.name if row.repeat == 1 else f"{row.name}_{repeat + 1}"
        else:
            prefix = SHORT_NAMES.get(row.kind, row.kind)
            self.counts[prefix] = self.counts.get(prefix, 0) + 1
            name = f"{prefix}{self.counts[prefix]}"
        if name in self.names:
            raise SpecError(f"duplicate layer name {show(name)}", file=self.spec.file, line=row.line,
                            layer=row.position, layer_label=row.label, key="name")
        self.names.add(name)
        return name

    def emit(self, row: LayerSpec, name: str, block: str, kind: str, in_shape: Shape, out_shape: Shape,
             kernel: int | None, stride: int | None, groups: int = 1, **extra) -> Shape:
        conv = kind in ("conv", "dw", "pw")
        fields = {"bias": row.bias, "bn": row.bn and conv, "act": row.act, **extra}
        self.layers.append(Layer(
            index=len(self.layers) + 1, name=name, block=block, kind=kind, in_shape=in_shape,
            out_shape=out_shape, kernel=kernel, stride=stride, groups=groups, position=row.position, **fields))
        return out_shape

    def add(self, row: LayerSpec, shape: Shape, repeat: int) -> Shape:
        block = self.block_name(row, repeat)
        channels, height, width = shape
        # a repeated row strides only in its first repetition (the V2 table's n, s)
        stride = row.stride if repeat == 0 else 1
        strided = self.spatial(row, height, width, stride)
        if row.kind == "conv":
            out = self.width(row, channels)
            self.check_groups(row, channels, out)
            return self.emit(row, block, block, "conv", shape, (out, *strided), row.kernel, stride, row.groups,
                             dilation=row.dilation, padding=row.padding)
        if row.kind == "pw":
            return self.emit(row, block, block, "pw", shape, (self.width(row, channels), *strided), 1, stride)
        if row.kind == "dw":
            return self.emit(row, block, block, "dw", shape, (channels, *strided), row.kernel, stride, channels,
                             dilation=row.dilation, padding=row.padding)
        if row.kind == "dwsep":
            mid = self.emit(row, f"{block}.dw", block, "dw", shape, (channels, *strided), row.kernel, stride,
                            channels, dilation=row.dilation, padding=row.padding)
            return self.emit(row, f"{block}.pw", block, "pw", mid, (self.width(row, channels), *strided), 1, 1)
        if row.kind == "inverted_residual":
            return self.inverted_residual(row, block, shape, stride, strided)
        if row.kind == "avgpool":
            return self.emit(row, block, block, "avgpool", shape, (channels, 1, 1), None, None, act="none")
        if row.kind == "maxpool":
            return self.emit(row, block, block, "maxpool", shape, (channels, *strided), row.kernel, stride,
                             act="none")
        if row.kind == "dropout":
            return self.emit(row, block, block, "dropout", shape, shape, None, None, act="none", p=row.p)
        if row.kind == "fc":
            return self.emit(row, block, block, "fc", shape, (self.width(row, channels), 1, 1), None, None)
        raise SpecError(f"no expansion rule for layer kind {show(row.kind)}", file=self.spec.file, line=row.line,
                        layer=row.position, key="kind")

    def spatial(self, row: LayerSpec, height: int, width: int, stride: int) -> tuple[int, int]:
        """The H x W after the row's spatial kernel: ceil(side / stride) with
        SAME padding; with explicit padding, what a convolution without
        padding gives on the padded input."""
        if row.padding is None:
            return math.ceil(height / stride), math.ceil(width / stride)
        span = row.dilation * (row.kernel - 1) + 1
        sides = tuple((side + sum(row.padding) - span) // stride + 1 for side in (height, width))
        if min(sides) < 1:
            if self.widths_only:
                return max(1, sides[0]), max(1, sides[1])
            raise SpecError(
                f"a {height}x{width} input (of a {self.resolution[0]}x{self.resolution[1]} image) padded by "
                f"{list(row.padding)} is smaller than the kernel's span of {span}", file=self.spec.file, line=row.line, layer=row.position, layer_label=row.label,
                key="padding")
        return sides  # type: ignore[return-value]

    def check_groups(self, row: LayerSpec, c_in: int, c_out: int) -> None:
        """A grouped conv's groups must divide its input and output widths,
        which are known only once alpha has been applied."""
        for side, channels in (("input", c_in), ("output", c_out)):
            if channels % row.groups:
                raise SpecError(
                    f"groups={row.groups} does not divide the {channels} {side} channels at alpha="
                    f"{float(self.alpha):g}", file=self.spec.file, line=row.line, layer=row.position,
                    layer_label=row.label, key="groups")

    def inverted_residual(self, row: LayerSpec, block: str, shape: Shape, stride: int,
                          strided: tuple[int, int]) -> Shape:
        """MobileNetV2's block (Sandler et al. 2018), with V3's options (Howard et
        al. 2019) and EfficientNet's (Tan & Le 2019): a 1x1 expansion to the
        hidden width (none when it equals the input's), a depthwise KxK conv
        with the stride (and dilation), optional squeeze-and-excite as the
        row's rule sizes it, and a linear 1x1 projection; the input is added to
        the output when the stride is 1 and the widths agree."""
        c_in = shape[0]
        hidden = self.spec.rule(row).expanded(c_in, row.t) if row.t else self.scaled(row, row.expand, "expand")
        out = self.scaled(row, row.out)
        if hidden != c_in:
            shape = self.emit(row, f"{block}.expand", block, "pw", shape, (hidden, *shape[1:]), 1, 1)
        shape = self.emit(row, f"{block}.dw", block, "dw", shape, (hidden, *strided), row.kernel, stride, hidden,
                          dilation=row.dilation, padding=row.padding)
        if row.se is not None:
            rule = row.se
            shape = self.emit(row, f"{block}.se", block, "se", shape, shape, None, None, act=rule.act, bias=True,
                              squeeze=rule.squeeze(c_in, hidden), se_act=rule.act, gate=rule.gate)
        residual = stride == 1 and c_in == out
        return self.emit(row, f"{block}.project", block, "pw", shape, (out, *strided), 1, 1, act="none",
                         residual=residual, drop_path=row.drop_path if residual else 0.0)
