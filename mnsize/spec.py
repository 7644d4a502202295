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
Python objects are refused) and every problem is one SpecError that names the
file and, where they apply, the line, the layer (1-based position in
``layers``) and the key.
"""

from __future__ import annotations

import dataclasses
import math
import os
from dataclasses import dataclass
from fractions import Fraction

from .bounds import MAX_CHANNELS, MAX_EXPANDED, MAX_LAYERS
from .errors import SpecError, show
from .specmodel import (  # noqa: F401  (LAYER_KEYS, LayerSpec and Spec are read from here too)
    ACTIVATIONS, ALTERNATIVES, DEPTH_KINDS, FRAMEWORKS, LAYER_KEYS, LIMITS, SCALES, SE_KEYS, TOP_KEYS, WIDTH_KEYS,
    LayerSpec, Spec)
from .width import ARITHMETICS, EXPANSIONS, RULES, SQUEEZE_OF, SqueezeRule, WidthRule
from .yamlio import child, items, key_lines, line_of, load_yaml, read_text

# --------------------------------------------------------------------------- loading


def read_spec(path: str | os.PathLike, display: str | None = None) -> Spec:
    """Load and validate a spec file. ``display`` is the name used in errors."""
    shown = display or os.fspath(path)
    return parse_spec(read_text(path, shown, SpecError), shown)


def parse_spec(text: str, file: str = "<spec>") -> Spec:
    """Parse spec text (the contents of a YAML file) into a Spec."""
    data, node = load_yaml(text, file, SpecError)
    return _Validator(file, node).spec(data)


# --------------------------------------------------------------------------- validation


@dataclass(frozen=True)
class _Row:
    """A ``layers`` entry of a known kind, as written (``given``)."""

    kind: str
    given: dict
    position: int

    @property
    def schema(self) -> dict[str, object]:
        """The keys the kind accepts, with their defaults (LAYER_KEYS)."""
        return LAYER_KEYS[self.kind]

    @property
    def where(self) -> dict[str, object]:
        """What an error about the row names: its position and a label of its
        kind and (the start of) its name."""
        name = self.given.get("name")
        return {"position": self.position, "label": f"{self.kind} {name[:40]}" if isinstance(name, str) else self.kind}

    def value(self, key: str) -> object:
        """The key as written, else the kind's default."""
        return self.given.get(key, self.schema[key])


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
            node = self.layer_node(position)
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

    def ratio(self, value: object, key: str, maximum: int = 1000, **where) -> Fraction:
        if isinstance(value, bool) or not isinstance(value, (int, float)) or (
                isinstance(value, float) and not math.isfinite(value)):
            raise self.fail(f"expected a positive number, got {show(value)}", key, **where)
        ratio = Fraction(repr(value)) if isinstance(value, float) else Fraction(value)
        if not 0 < ratio <= maximum:
            raise self.fail(f"expected a number > 0 and <= {maximum}, got {show(value)}", key, **where)
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
        depth = self.ratio(data["depth"], "depth") if "depth" in data else Fraction(1)
        width = self.width(data["width"], "width")
        framework = self.choice(data["framework"], "framework", FRAMEWORKS) if "framework" in data else ""
        se = self.squeeze(data["se"], SqueezeRule(), "se") if "se" in data else SqueezeRule()
        layers = data["layers"]
        if not isinstance(layers, list) or not layers:
            raise self.fail("expected a non-empty list of layers", "layers")
        if len(layers) > MAX_LAYERS:
            raise self.fail(f"{len(layers):,} layers; a spec may have at most {MAX_LAYERS:,}", "layers")
        rows = tuple(self.layer(entry, i, activation, se, width) for i, entry in enumerate(layers, 1))
        # EfficientNet's depth rule (Tan & Le 2019): a block row's repeat becomes ceil(repeat x depth),
        # in the width rule's arithmetic (torchvision computes it in floats)
        product = (lambda n: float(n) * float(depth)) if width.arithmetic == "float" else (lambda n: n * depth)
        rows = tuple(dataclasses.replace(row, repeat=math.ceil(product(row.repeat))) if row.kind in DEPTH_KINDS
                     else row for row in rows)
        expanded = sum(row.repeat for row in rows)
        if expanded > MAX_EXPANDED:
            raise self.fail(f"the table repeats to {expanded:,} rows; a spec may have at most {MAX_EXPANDED:,}",
                            "depth" if depth != 1 else "layers")
        return Spec(
            name=name,
            title=self.text(data.get("title", name), "title"),
            source=self.text(data["source"], "source"),
            file=self.file,
            in_channels=in_channels,
            resolution=resolution,
            width=width,
            classes=self.integer(data["classes"], "classes"),
            layers=rows,
            depth=depth,
            framework=framework,
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

    def width(self, value: object, key: str, base: WidthRule | None = None, **where) -> WidthRule:
        """A width rule: a rule name or a mapping of WIDTH_KEYS. On a row
        (``base`` the spec's rule) each key given replaces the spec's; a row
        that names another rule keeps only the spec's arithmetic and
        expansions."""
        if isinstance(value, str):
            value = {"rule": value}
        if not isinstance(value, dict):
            raise self.fail("expected a rule name or a mapping {rule: floor|divisible, ...}", key, **where)
        rule = self.choice(value.get("rule", base.rule if base else None), f"{key}.rule", RULES, **where)
        for name in value:
            if name not in WIDTH_KEYS[rule]:
                raise self.fail(f"unknown key for the {rule} rule (expected {', '.join(WIDTH_KEYS[rule])})",
                                f"{key}.{name}", **where)
        if base is None:
            inherited = WidthRule(rule)
        else:
            inherited = base if base.rule == rule else WidthRule(rule, arithmetic=base.arithmetic,
                                                                 expansions=base.expansions)
        fields = {"arithmetic": self.choice(value.get("arithmetic", inherited.arithmetic), f"{key}.arithmetic",
                                            ARITHMETICS, **where),
                  "expansions": self.choice(value.get("expansions", inherited.expansions), f"{key}.expansions",
                                            EXPANSIONS, **where)}
        if rule == "floor":
            fields["minimum"] = self.integer(value.get("min", inherited.minimum), f"{key}.min", minimum=0, **where)
        else:
            fields["divisor"] = self.integer(value.get("divisor", inherited.divisor), f"{key}.divisor", **where)
            fields["truncate"] = self.boolean(value.get("truncate", inherited.truncate), f"{key}.truncate", **where)
        return WidthRule(rule, **fields)

    def squeeze(self, value: object, base: SqueezeRule, key: str, **where) -> SqueezeRule:
        """A squeeze-and-excite mapping (SE_KEYS), each key given replacing
        ``base``'s."""
        if not isinstance(value, dict):
            raise self.fail(f"expected a mapping such as {{ratio: 0.25, of: input}}, got {show(value)}", key, **where)
        fields = {}
        for name, given in value.items():
            sub = f"{key}.{name}"
            if name not in SE_KEYS:
                raise self.fail(f"unknown key for squeeze-and-excite (expected {', '.join(SE_KEYS)})", sub, **where)
            if name == "ratio":  # a squeeze: at most the width it is a ratio of
                fields["ratio"] = self.ratio(given, sub, maximum=1, **where)
            elif name == "of":
                fields["of"] = self.choice(given, sub, SQUEEZE_OF, **where)
            elif name in ("act", "gate"):
                fields[name] = self.choice(given, sub, ACTIVATIONS, **where)
            else:
                fields[SE_KEYS[name]] = self.integer(given, sub, **where)
        return dataclasses.replace(base, **fields)

    # -- one row of the layers table
    def layer(self, entry: object, position: int, activation: str, se_rule: SqueezeRule,
              base: WidthRule) -> LayerSpec:
        """One row of ``layers``: its kind and keys, then each value. The checks
        run in this order, so that a row with several problems always reports
        the same one."""
        row = self.layer_row(entry, position)
        self.layer_keys(row)
        name = self.layer_name(row)
        # an fc without `out` is the classifier: it maps to the spec's classes (0 here);
        # a pw or inverted residual given by `t` takes its width from its input
        out = self.layer_integer(row, "out", absent=0)
        act = self.layer_act(row, activation)
        kernel = self.layer_kernel(row)
        scale = self.layer_scale(row)
        t = self.ratio(row.given["t"], "t", **row.where) if "t" in row.given else Fraction(0)
        p = self.layer_probability(row, "p")
        stride = self.layer_integer(row, "stride", absent=1)
        repeat = self.layer_integer(row, "repeat", absent=1)
        bn = self.layer_flag(row, "bn")
        bias = self.layer_flag(row, "bias")
        expand = self.layer_integer(row, "expand", absent=0)
        se = self.layer_se(row, se_rule)
        groups = self.layer_integer(row, "groups", absent=1)
        dilation = self.layer_integer(row, "dilation", absent=1)
        drop_path = self.layer_probability(row, "drop_path")
        width = self.width(row.given["width"], "width", base, **row.where) if "width" in row.given else None
        padding = self.layer_padding(row)
        return LayerSpec(kind=row.kind, position=position, line=line_of(self.layer_node(position)), name=name,
                         out=out, kernel=kernel, stride=stride, repeat=repeat, scale=scale, bn=bn, act=act,
                         bias=bias, t=t, expand=expand, se=se, p=p, groups=groups, dilation=dilation,
                         drop_path=drop_path, width=width, padding=padding)

    def layer_node(self, position: int):
        """The YAML node of the row at ``position``, for its line number."""
        return self.layer_nodes[position - 1] if position <= len(self.layer_nodes) else None

    def layer_row(self, entry: object, position: int) -> _Row:
        """The entry as a mapping with a known kind; a bare kind such as
        ``- avgpool`` stands for ``{kind: avgpool}``."""
        if isinstance(entry, str):
            entry = {"kind": entry}
        if not isinstance(entry, dict):
            raise self.fail(f"expected a mapping such as {{kind: dwsep, out: 64, stride: 1}}, got {show(entry)}",
                            position=position)
        if "kind" not in entry:
            raise self.fail("missing key 'kind'", position=position)
        kind = entry["kind"]
        if not isinstance(kind, str) or kind not in LAYER_KEYS:
            raise self.fail(f"unknown layer kind {show(kind)} (expected one of {', '.join(LAYER_KEYS)})", "kind",
                            position=position)
        return _Row(kind, entry, position)

    def layer_keys(self, row: _Row) -> None:
        """Only the keys the row's kind accepts, every required one, and
        exactly one of each alternative pair (ALTERNATIVES)."""
        for key in row.given:
            if key != "kind" and key not in row.schema:
                raise self.fail(f"unknown key for a {row.kind} layer (expected {', '.join(row.schema)})", str(key),
                                **row.where)
        for key, default in row.schema.items():
            if default is None and key not in row.given:
                raise self.fail(f"a {row.kind} layer needs '{key}'", key, **row.where)
        if row.kind in ALTERNATIVES:
            given = [key for key in ALTERNATIVES[row.kind] if key in row.given]
            if len(given) != 1:
                first, second = ALTERNATIVES[row.kind]
                raise self.fail(f"a {row.kind} layer needs exactly one of '{first}' and '{second}'",
                                given[-1] if given else None, **row.where)

    def layer_integer(self, row: _Row, key: str, absent: int) -> int:
        """A whole-number key: checked where the row gives it, else its kind's
        default, or ``absent`` where the kind has no such key."""
        if key in row.given:
            return self.integer(row.given[key], key, **row.where)
        return row.schema.get(key, absent)  # type: ignore[return-value]

    def layer_flag(self, row: _Row, key: str) -> bool:
        """A true/false key: checked where the row gives it, else its kind's
        default, or false where the kind has no such key."""
        if key in row.given:
            return self.boolean(row.given[key], key, **row.where)
        return row.schema.get(key, False)  # type: ignore[return-value]

    def layer_name(self, row: _Row) -> str:
        """An optional name of letters, digits and underscores ('' if none)."""
        name = row.value("name")
        if name == "":
            return name
        name = self.text(name, "name", **row.where)
        if not name.replace("_", "").isalnum():
            raise self.fail(f"expected letters, digits and underscores, got {show(name)}", "name", **row.where)
        return name

    def layer_act(self, row: _Row, activation: str) -> str:
        """The row's activation; left blank, the spec's ``activation``; 'none'
        for a kind that has none."""
        if "act" not in row.schema:
            return "none"
        return self.choice(row.value("act") or activation, "act", ACTIVATIONS, **row.where)

    def layer_kernel(self, row: _Row) -> int:
        """An odd kernel size; 1 for a kind without a kernel."""
        kernel = self.layer_integer(row, "kernel", absent=1)
        if kernel % 2 == 0:
            # SAME padding of an odd kernel is symmetric, (K-1)/2 on each side, which
            # is what a PyTorch Conv2d can express for any input size
            raise self.fail(f"expected an odd kernel size, got {kernel}", "kernel", **row.where)
        return kernel

    def layer_scale(self, row: _Row) -> str:
        """How alpha applies to the row's widths (SCALES); 'none' for a kind
        without widths."""
        if "scale" not in row.schema:
            return "none"
        scale = row.value("scale")
        if not isinstance(scale, (bool, str)) or scale not in SCALES:
            raise self.fail(f"expected true, false or up, got {show(scale)}", "scale", **row.where)
        return SCALES[scale]

    def layer_padding(self, row: _Row) -> tuple[int, int] | None:
        """``same`` (None) or [before, after]: the zeros added before and after
        each side of the input of the row's spatial kernel, which then
        convolves without padding (Keras's ZeroPadding2D and a 'valid' conv)."""
        value = row.given.get("padding", "same")
        if value == "same":
            return None
        if not isinstance(value, list) or len(value) != 2:
            raise self.fail(f"expected same or [before, after], got {show(value)}", "padding", **row.where)
        before, after = (self.integer(side, "padding", minimum=0, **row.where) for side in value)
        return before, after

    def layer_probability(self, row: _Row, key: str) -> float:
        """A probability in [0, 1) (dropout's ``p``, ``drop_path``); 0 for a
        kind without the key."""
        if key not in row.schema:
            return 0.0
        p = row.value(key)
        if isinstance(p, bool) or not isinstance(p, (int, float)) or not 0 <= p < 1:
            raise self.fail(f"expected a probability in [0, 1), got {show(p)}", key, **row.where)
        return float(p)

    def layer_se(self, row: _Row, rule: SqueezeRule) -> SqueezeRule | None:
        """An inverted residual's squeeze-and-excite: false (none), true (the
        spec's rule, by default MobileNetV3's) or a mapping of keys that
        replace the spec's rule's; None for other kinds."""
        value = row.given.get("se", False)
        if isinstance(value, bool):
            return rule if value else None
        if isinstance(value, dict):
            return self.squeeze(value, rule, "se", **row.where)
        raise self.fail(f"expected true, false or a mapping such as {{ratio: 0.25, of: input}}, got {show(value)}",
                        "se", **row.where)

