"""The layer-spec format: YAML architecture files loaded into frozen, validated
dataclasses.

A spec reads like a paper's architecture table (see docs/spec-format.md)::

    name: mobilenet_v1
    source: Howard et al. 2017, arXiv:1704.04861, Table 1
    input: {channels: 3, resolution: 224}
    width: {rule: floor, min: 8}
    classes: 1000
    layers:
      - {kind: conv,  kernel: 3, out: 32, stride: 2}
      - {kind: dwsep,            out: 64, stride: 1}
      ...

Loading never executes anything (yaml's safe loader: tags that would build
Python objects are refused) and every problem is a SpecError that names the
file, the line, the layer (1-based position in ``layers``) and the key.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from fractions import Fraction

from .errors import SpecError, show
from .width import RULES, WidthRule
from .yamlio import child, items, key_lines, line_of, load_yaml, read_text

#: Layer kinds a spec may use, with the keys each accepts beyond ``kind``.
#: ``None`` marks a required key; any other value is the default.
_CONV_KEYS = {"name": "", "repeat": 1, "stride": 1, "bn": True, "act": "", "bias": False}
LAYER_KEYS: dict[str, dict[str, object]] = {
    "conv": {**_CONV_KEYS, "out": None, "kernel": None, "scale": True},
    "dwsep": {**_CONV_KEYS, "out": None, "kernel": 3, "scale": True},
    "dw": {**_CONV_KEYS, "kernel": 3},
    "pw": {**_CONV_KEYS, "out": 0, "t": 0, "scale": True},
    "inverted_residual": {"name": "", "repeat": 1, "stride": 1, "bn": True, "act": "", "out": None, "t": 0,
                          "expand": 0, "kernel": 3, "se": False, "scale": True},
    "avgpool": {"name": ""},
    "dropout": {"name": "", "p": None},
    "fc": {"name": "", "out": 0, "scale": True, "bias": True, "act": "none"},
}
#: exactly one of each pair, where a kind has both
ALTERNATIVES = {"pw": ("out", "t"), "inverted_residual": ("t", "expand")}
ACTIVATIONS = ("relu", "relu6", "hardswish", "hardsigmoid", "none")
SCALES = {True: "alpha", False: "none", "up": "up"}
TOP_KEYS = ("name", "title", "source", "input", "width", "classes", "activation", "layers")
#: Bounds on what a spec may say: far beyond any real network, they keep every
#: count meaningful and every PyTorch size within int64.
MAX_LAYERS = 2_000          # rows of the layers table
MAX_REPEAT = 1_000
MAX_CHANNELS = 1_000_000    # any width at alpha 1, and classes
MAX_KERNEL = 99
MAX_STRIDE = 1_000_000
MAX_EXPANDED = 20_000       # layers after repeats
LIMITS = {"repeat": MAX_REPEAT, "kernel": MAX_KERNEL, "stride": MAX_STRIDE, "resolution": 1_000_000,
          "divisor": 1024, "min": MAX_CHANNELS}


@dataclass(frozen=True)
class LayerSpec:
    """One row of a spec's ``layers`` table, validated, with defaults filled in.

    ``out`` is the table's channel count before the width multiplier (0 for an
    ``fc`` that maps to the spec's classes, or where ``t`` gives it). ``scale``
    says how alpha applies to ``out`` and ``expand``: 'alpha' (the width rule
    at alpha), 'none' (as written) or 'up' (at max(1, alpha)). ``t`` is an
    expansion factor over the input channels (0: none); ``expand`` an
    inverted residual's hidden width; ``se`` adds squeeze-and-excite; ``p`` is
    a dropout probability.
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
    se: bool = False
    p: float = 0.0

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


# --------------------------------------------------------------------------- loading


def load_spec(path: str | os.PathLike, display: str | None = None) -> Spec:
    """Load and validate a spec file. ``display`` is the name used in errors."""
    shown = display or os.fspath(path)
    return parse_spec(read_text(path, shown, SpecError), shown)


def parse_spec(text: str, file: str = "<spec>") -> Spec:
    """Parse spec text (the contents of a YAML file) into a Spec."""
    data, node = load_yaml(text, file, SpecError)
    return _Validator(file, node).spec(data)


# --------------------------------------------------------------------------- validation


class _Validator:
    """Checks one parsed document; knows the file and the YAML node tree so that
    every error carries a line number."""

    def __init__(self, file: str, node) -> None:
        self.file = file
        self.top_lines = key_lines(node)
        self.layer_nodes = items(child(node, "layers"))

    # -- errors
    def fail(self, message: str, key: str | None = None, *, position: int | None = None,
             label: str | None = None) -> SpecError:
        line = None
        if position is not None:
            node = self.layer_nodes[position - 1] if position <= len(self.layer_nodes) else None
            line = key_lines(node).get(key or "", None) or line_of(node)
        elif key is not None:
            line = self.top_lines.get(key.split(".")[0])
        return SpecError(message, file=self.file, line=line, layer=position, layer_label=label, key=key)

    # -- typed getters
    def integer(self, value: object, key: str, minimum: int = 1, maximum: int | None = None, **where) -> int:
        if maximum is None:
            maximum = LIMITS.get(key.split(".")[-1], MAX_CHANNELS)
        if isinstance(value, bool) or not isinstance(value, int):
            raise self.fail(f"expected an integer from {minimum} to {maximum:,}, got {show(value)}", key, **where)
        if not minimum <= value <= maximum:
            raise self.fail(f"expected an integer from {minimum} to {maximum:,}, got {show(value)}", key, **where)
        return value

    def ratio(self, value: object, key: str, **where) -> Fraction:
        if isinstance(value, bool) or not isinstance(value, (int, float)) or (
                isinstance(value, float) and not math.isfinite(value)):
            raise self.fail(f"expected a positive number, got {show(value)}", key, **where)
        ratio = Fraction(repr(value)) if isinstance(value, float) else Fraction(value)
        if not 0 < ratio <= 1000:
            raise self.fail(f"expected a number > 0 and <= 1000, got {show(value)}", key, **where)
        return ratio

    def boolean(self, value: object, key: str, **where) -> bool:
        if not isinstance(value, bool):
            raise self.fail(f"expected true or false, got {show(value)}", key, **where)
        return value

    def text(self, value: object, key: str, **where) -> str:
        if not isinstance(value, str) or not value.strip():
            raise self.fail(f"expected a non-empty string, got {show(value)}", key, **where)
        return value.strip()

    def choice(self, value: object, key: str, choices: tuple[str, ...], **where) -> str:
        if value not in choices:
            raise self.fail(f"expected one of {', '.join(choices)}, got {show(value)}", key, **where)
        return value  # type: ignore[return-value]

    # -- the document
    def spec(self, data: object) -> Spec:
        if not isinstance(data, dict):
            kind = "an empty document" if data is None else f"a {type(data).__name__}"
            raise SpecError(f"expected a mapping with keys name, source, input, width, classes, layers; got {kind}",
                            file=self.file)
        for key in data:
            if key not in TOP_KEYS:
                raise self.fail(f"unknown key (expected one of {', '.join(TOP_KEYS)})", str(key))
        for key in ("name", "source", "input", "width", "classes", "layers"):
            if key not in data:
                raise SpecError(f"missing required key '{key}'", file=self.file)
        name = self.text(data["name"], "name")
        in_channels, resolution = self.input(data["input"])
        activation = self.choice(data.get("activation", "relu"), "activation", ACTIVATIONS)
        layers = data["layers"]
        if not isinstance(layers, list) or not layers:
            raise self.fail("expected a non-empty list of layers", "layers")
        if len(layers) > MAX_LAYERS:
            raise self.fail(f"{len(layers):,} layers; a spec may have at most {MAX_LAYERS:,}", "layers")
        rows = tuple(self.layer(entry, i, activation) for i, entry in enumerate(layers, 1))
        expanded = sum(row.repeat for row in rows)
        if expanded > MAX_EXPANDED:
            raise self.fail(f"the table repeats to {expanded:,} rows; a spec may have at most {MAX_EXPANDED:,}",
                            "layers")
        return Spec(
            name=name,
            title=self.text(data.get("title", name), "title"),
            source=self.text(data["source"], "source"),
            file=self.file,
            in_channels=in_channels,
            resolution=resolution,
            width=self.width(data["width"]),
            classes=self.integer(data["classes"], "classes"),
            layers=rows,
        )

    def input(self, value: object) -> tuple[int, tuple[int, int]]:
        if not isinstance(value, dict):
            raise self.fail("expected a mapping {channels: C, resolution: R or [H, W]}", "input")
        for key in value:
            if key not in ("channels", "resolution"):
                raise self.fail("unknown key (expected channels, resolution)", f"input.{key}")
        if "channels" not in value or "resolution" not in value:
            raise self.fail("expected both channels and resolution", "input")
        channels = self.integer(value["channels"], "input.channels")
        res = value["resolution"]
        if isinstance(res, list) and len(res) == 2:
            resolution = (self.integer(res[0], "input.resolution"), self.integer(res[1], "input.resolution"))
        elif isinstance(res, int) and not isinstance(res, bool):
            side = self.integer(res, "input.resolution")
            resolution = (side, side)
        else:
            raise self.fail(f"expected an integer or [H, W], got {show(res)}", "input.resolution")
        return channels, resolution

    def width(self, value: object) -> WidthRule:
        if isinstance(value, str):
            value = {"rule": value}
        if not isinstance(value, dict):
            raise self.fail("expected a rule name or a mapping {rule: floor|divisible, ...}", "width")
        rule = self.choice(value.get("rule"), "width.rule", RULES)
        allowed = {"floor": ("rule", "min"), "divisible": ("rule", "divisor")}[rule]
        for key in value:
            if key not in allowed:
                raise self.fail(f"unknown key for the {rule} rule (expected {', '.join(allowed)})", f"width.{key}")
        if rule == "floor":
            return WidthRule("floor", minimum=self.integer(value.get("min", 0), "width.min", minimum=0))
        return WidthRule("divisible", divisor=self.integer(value.get("divisor", 8), "width.divisor"))

    def layer(self, entry: object, position: int, activation: str) -> LayerSpec:
        where = {"position": position}
        if isinstance(entry, str):  # a bare kind such as `- avgpool`
            entry = {"kind": entry}
        if not isinstance(entry, dict):
            raise self.fail(f"expected a mapping such as {{kind: dwsep, out: 64, stride: 1}}, got {show(entry)}",
                            **where)
        if "kind" not in entry:
            raise self.fail("missing key 'kind'", **where)
        kind = entry["kind"]
        if not isinstance(kind, str) or kind not in LAYER_KEYS:
            raise self.fail(f"unknown layer kind {show(kind)} (expected one of {', '.join(LAYER_KEYS)})", "kind",
                            **where)
        schema = LAYER_KEYS[kind]
        where["label"] = kind if not isinstance(entry.get("name"), str) else f"{kind} {entry['name'][:40]}"
        for key in entry:
            if key != "kind" and key not in schema:
                raise self.fail(f"unknown key for a {kind} layer (expected {', '.join(schema)})", str(key), **where)
        for key, default in schema.items():
            if default is None and key not in entry:
                raise self.fail(f"a {kind} layer needs '{key}'", key, **where)
        if kind in ALTERNATIVES:
            given = [key for key in ALTERNATIVES[kind] if key in entry]
            if len(given) != 1:
                first, second = ALTERNATIVES[kind]
                raise self.fail(f"a {kind} layer needs exactly one of '{first}' and '{second}'",
                                given[-1] if given else None, **where)
        values = {key: entry.get(key, default) for key, default in schema.items()}

        def number(key: str, fallback: int) -> int:
            return self.integer(values[key], key, **where) if key in values else fallback

        def flag(key: str) -> bool:
            return self.boolean(values[key], key, **where) if key in values else False

        name = values["name"]
        if name != "":
            name = self.text(name, "name", **where)
            if not name.replace("_", "").isalnum():
                raise self.fail(f"expected letters, digits and underscores, got {show(name)}", "name", **where)
        # an fc without `out` is the classifier: it maps to the spec's classes (0 here);
        # a pw or inverted residual given by `t` takes its width from its input
        out = number("out", 0) if "out" in entry else 0
        act = "none"
        if "act" in values:
            act = self.choice(values["act"] or activation, "act", ACTIVATIONS, **where)
        kernel = number("kernel", 1)
        if kernel % 2 == 0:
            # SAME padding of an odd kernel is symmetric, (K-1)/2 on each side, which
            # is what a PyTorch Conv2d can express for any input size
            raise self.fail(f"expected an odd kernel size, got {kernel}", "kernel", **where)
        scale = "none"
        if "scale" in values:
            if not isinstance(values["scale"], (bool, str)) or values["scale"] not in SCALES:
                raise self.fail(f"expected true, false or up, got {show(values['scale'])}", "scale", **where)
            scale = SCALES[values["scale"]]
        t = Fraction(0)
        if "t" in entry:
            t = self.ratio(entry["t"], "t", **where)
        p = 0.0
        if "p" in values:
            p = values["p"]
            if isinstance(p, bool) or not isinstance(p, (int, float)) or not 0 <= p < 1:
                raise self.fail(f"expected a probability in [0, 1), got {show(p)}", "p", **where)
        node = self.layer_nodes[position - 1] if position <= len(self.layer_nodes) else None
        return LayerSpec(
            kind=kind,
            position=position,
            line=line_of(node),
            name=name,
            out=out,
            kernel=kernel,
            stride=number("stride", 1),
            repeat=number("repeat", 1),
            scale=scale,
            bn=flag("bn"),
            act=act,
            bias=flag("bias"),
            t=t,
            expand=number("expand", 0) if "expand" in entry else 0,
            se=flag("se"),
            p=float(p),
        )
