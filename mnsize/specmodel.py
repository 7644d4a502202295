"""A validated spec as data: the format's schema (the layer kinds and the keys
each accepts, the top-level keys, the bounds of whole-number keys) and the
frozen dataclasses a spec loads into (mnsize.spec reads and validates the
YAML). Kept apart so that what a spec is reads in one place, without the
validation around it."""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction

from .bounds import MAX_CHANNELS, MAX_DIVISOR, MAX_KERNEL, MAX_REPEAT, MAX_SIDE, MAX_STRIDE
from .width import SqueezeRule, WidthRule

#: Layer kinds a spec may use, with the keys each accepts beyond ``kind``.
#: ``None`` marks a required key; any other value is the default.
_CONV_KEYS = {"name": "", "repeat": 1, "stride": 1, "bn": True, "act": "", "bias": False}
#: ``width`` on a row replaces the spec's width rule for that row; ``padding``
#: replaces SAME padding with explicit zeros before and after each side
LAYER_KEYS: dict[str, dict[str, object]] = {
    "conv": {**_CONV_KEYS, "out": None, "kernel": None, "scale": True, "width": "", "groups": 1, "dilation": 1,
             "padding": "same"},
    "dwsep": {**_CONV_KEYS, "out": None, "kernel": 3, "scale": True, "width": "", "dilation": 1, "padding": "same"},
    "dw": {**_CONV_KEYS, "kernel": 3, "dilation": 1, "padding": "same"},
    "pw": {**_CONV_KEYS, "out": 0, "t": 0, "scale": True, "width": ""},
    "inverted_residual": {"name": "", "repeat": 1, "stride": 1, "bn": True, "bias": False, "act": "", "out": None,
                          "t": 0, "expand": 0, "kernel": 3, "se": False, "scale": True, "width": "", "dilation": 1,
                          "padding": "same", "drop_path": 0},
    "avgpool": {"name": ""},
    "maxpool": {"name": "", "kernel": None, "stride": 1},
    "dropout": {"name": "", "p": None},
    "fc": {"name": "", "out": 0, "scale": True, "width": "", "bias": True, "act": "none"},
}
#: exactly one of each pair, where a kind has both
ALTERNATIVES = {"pw": ("out", "t"), "inverted_residual": ("t", "expand")}
ACTIVATIONS = ("relu", "relu6", "hardswish", "hardsigmoid", "silu", "sigmoid", "gelu", "none")
SCALES = {True: "alpha", False: "none", "up": "up"}
TOP_KEYS = ("name", "title", "source", "framework", "input", "width", "depth", "classes", "activation", "se",
            "layers")
#: whose network a spec reproduces: a framework's code (exactly, at every alpha) or a paper's table
FRAMEWORKS = ("paper", "torchvision", "keras", "tf-slim")
#: the keys of a width rule, by rule
WIDTH_KEYS = {"floor": ("rule", "min", "arithmetic", "expansions"),
              "divisible": ("rule", "divisor", "arithmetic", "truncate", "expansions")}
#: the rows whose repeat the depth multiplier scales (EfficientNet's blocks)
DEPTH_KINDS = ("inverted_residual", "dwsep")
#: a squeeze-and-excite mapping's keys, and the SqueezeRule field each sets
SE_KEYS = {"ratio": "ratio", "of": "of", "divisor": "divisor", "min": "minimum", "act": "act", "gate": "gate"}
#: the most each whole-number key may be (mnsize.bounds); a width or a group count, MAX_CHANNELS; a
#: dilation spaces taps as a stride spaces positions
LIMITS = {"repeat": MAX_REPEAT, "kernel": MAX_KERNEL, "stride": MAX_STRIDE, "resolution": MAX_SIDE,
          "divisor": MAX_DIVISOR, "min": MAX_CHANNELS, "dilation": MAX_STRIDE, "padding": MAX_KERNEL}


@dataclass(frozen=True)
class LayerSpec:
    """One row of a spec's ``layers`` table, validated, with defaults filled in.

    ``out`` is the table's channel count before the width multiplier (0 for an
    ``fc`` that maps to the spec's classes, or where ``t`` gives it). ``scale``
    says how alpha applies to ``out`` and ``expand``: 'alpha' (the width rule
    at alpha), 'none' (as written) or 'up' (at max(1, alpha)). ``t`` is an
    expansion factor over the input channels (0: none); ``expand`` an
    inverted residual's hidden width; ``se`` is the squeeze-and-excite rule of
    an inverted residual (None: none); ``p`` is a dropout probability.
    ``groups`` splits a conv's channels, ``dilation`` spaces a spatial
    kernel's taps, ``drop_path`` is the probability that training drops an
    inverted residual's branch (stochastic depth: no cost). ``repeat`` is
    the table's, times the spec's depth multiplier for block rows. ``width``
    is a width rule of the row's own; ``padding`` the zeros a spatial kernel
    (the depthwise conv of a block) sees before and after each side of its
    input, where it is not SAME padding.
    """

    kind: str
    position: int
    line: int | None
    name: str
    out: int
    kernel: int
    stride: int
    repeat: int
    scale: str
    bn: bool
    act: str
    bias: bool
    t: Fraction = Fraction(0)
    expand: int = 0
    se: SqueezeRule | None = None
    p: float = 0.0
    groups: int = 1
    dilation: int = 1
    drop_path: float = 0.0
    width: WidthRule | None = None          # the row's own width rule (None: the spec's)
    padding: tuple[int, int] | None = None  # zeros before and after each side (None: SAME padding)

    @property
    def label(self) -> str:
        return f"{self.kind} {self.name}" if self.name else self.kind


@dataclass(frozen=True)
class Spec:
    name: str
    title: str
    source: str
    file: str
    in_channels: int
    resolution: tuple[int, int]
    width: WidthRule
    classes: int
    layers: tuple[LayerSpec, ...]
    depth: Fraction = Fraction(1)  # the depth multiplier the block rows' repeats were scaled by
    framework: str = ""            # whose network it reproduces (FRAMEWORKS; "" where the spec does not say)

    def rule(self, row: LayerSpec) -> WidthRule:
        """The width rule of ``row``: its own, else the spec's."""
        return row.width or self.width
