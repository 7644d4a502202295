"""A real model's layers written back as a spec: the YAML of configs/, with its
blocks recognised.

``spec_rows`` reads the layers a front-end found (mnsize.graph.to_layers) as a
table of spec rows: a depthwise conv and the pointwise conv after it are one
``dwsep`` row; an expansion, a depthwise conv, an optional squeeze-and-excite
and a linear projection are one ``inverted_residual`` row; consecutive equal
rows become one row with ``repeat`` (the stride on the first, as in the
MobileNetV2 table). The imported model is the spec's α = 1. ``spec_text``
writes the rows as YAML a person can read and edit.

What a spec cannot say (a residual add around anything but one inverted
residual block, an activation on a projection, a squeeze-and-excite outside a
block) is refused, naming the layer, rather than written as something else.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass
from fractions import Fraction

from .errors import GraphError
from .expand import Layer
from .width import SqueezeRule


@dataclass(frozen=True)
class Imported:
    """The spec an import writes: its header and its rows."""

    name: str
    source: str
    channels: int
    resolution: tuple[int, int]
    classes: int
    activation: str
    rows: tuple[dict, ...]
    se: dict | None      # the squeeze-and-excite rule that `se: true` means, where not MobileNetV3's


def _fail(layer: Layer, source: str, message: str) -> GraphError:
    return GraphError(f"{source}: layer {layer.name!r}: {message}")


def _conv_keys(layer: Layer) -> dict:
    keys = {"kind": layer.kind}
    if layer.kind == "conv":
        keys["kernel"] = layer.kernel
    elif layer.kind == "dw" and layer.kernel != 3:
        keys["kernel"] = layer.kernel
    if layer.kind in ("conv", "pw"):
        keys["out"] = layer.out_shape[0]
    if layer.kind == "conv" and layer.groups != 1:
        keys["groups"] = layer.groups
    if layer.dilation != 1 and layer.kind != "pw":
        keys["dilation"] = layer.dilation
    keys["stride"] = layer.stride
    keys["act"] = layer.act
    if not layer.bn:
        keys["bn"] = False
    if layer.bias:
        keys["bias"] = True
    return keys


def _fc_keys(layer: Layer) -> dict:
    keys = {"kind": "fc", "out": layer.out_shape[0]}
    if not layer.bias:
        keys["bias"] = False
    keys["act"] = layer.act
    return keys


def _se_candidates(se: Layer, hidden: int) -> list[tuple[Fraction, str, int]]:
    """Squeeze rules to try, as (ratio, of, divisor): a quarter of the block's
    expanded or input width rounded to 8 or floored (MobileNetV3's,
    EfficientNet's), then the exact ratio of the expanded width."""
    candidates = [(Fraction(1, 4), of, divisor) for of in ("expanded", "input") for divisor in (8, 1)]
    ratio = Fraction(se.squeeze, hidden)
    if ratio <= 1 and _decimal(ratio) is not None:
        candidates.append((ratio, "expanded", 1))
    return candidates


def _fits(candidate: tuple[Fraction, str, int], se: Layer, c_in: int, hidden: int) -> bool:
    ratio, of, divisor = candidate
    rule = SqueezeRule(ratio=ratio, of=of, divisor=divisor, minimum=1, act=se.se_act, gate=se.gate)
    return rule.squeeze(c_in, hidden) == se.squeeze


def _se_rules(blocks: list[tuple[dict, Layer, int, int]], source: str) -> None:
    """Each block's squeeze-and-excite rule (mnsize.width.SqueezeRule) that
    gives its squeezed width at α = 1: one rule for every block where one
    fits them all, else the first that fits each."""
    def keys(candidate, se):
        ratio, of, divisor = candidate
        return {"ratio": _decimal(ratio), "of": of, "divisor": divisor, "min": 1, "act": se.se_act, "gate": se.gate}

    shared = [c for c in _se_candidates(blocks[0][1], blocks[0][3]) if all(_fits(c, *b[1:]) for b in blocks)] if blocks else []
    for row, se, c_in, hidden in blocks:
        fitting = shared or [c for c in _se_candidates(se, hidden) if _fits(c, se, c_in, hidden)]
        if not fitting:
            raise _fail(se, source, f"squeezes {hidden} channels to {se.squeeze}, which no ratio of the block's "
                                    f"input or expanded width written in a few decimals gives")
        row["se"] = keys(fitting[0], se)


def _decimal(value: Fraction) -> float | None:
    """``value`` as a float that reads back exactly (a decimal of at most six
    places), else None."""
    for places in range(7):
        if (value * 10 ** places).denominator == 1:
            return float(value) if places else int(value)
    return None


#: what `se: true` means when a spec gives no `se` of its own (MobileNetV3's rule)
_V3_SQUEEZE = {"ratio": 0.25, "of": "expanded", "divisor": 8, "min": 1, "act": "relu", "gate": "hardsigmoid"}


def _inverted_residual(layers: list[Layer], source: str) -> tuple[dict, int] | None:
    """An inverted residual block at the start of ``layers``, as a row, and
    how many layers it took; None if they do not start one."""
    i = 0
    expand = None
    if layers[0].kind == "pw" and len(layers) > 1 and layers[1].kind == "dw" and not layers[0].residual:
        expand, i = layers[0], 1
    if i >= len(layers) or layers[i].kind != "dw":
        return None
    dw = layers[i]
    se = layers[i + 1] if i + 1 < len(layers) and layers[i + 1].kind == "se" else None
    j = i + (2 if se else 1)
    if j >= len(layers) or layers[j].kind != "pw":
        return None
    project = layers[j]
    if project.act != "none" or project.stride != 1:
        return None
    if expand is not None and (expand.act != dw.act or expand.bn != dw.bn or expand.stride != 1):
        return None
    if expand is None and se is None and dw.act == "none":
        return None
    convs = [lay for lay in (expand, dw, project) if lay is not None]
    if len({(lay.bn, lay.bias) for lay in convs}) != 1:
        return None
    c_in = (expand or dw).in_shape[0]
    hidden = dw.in_shape[0]
    out = project.out_shape[0]
    keys: dict = {"kind": "inverted_residual"}
    if dw.kernel != 3:
        keys["kernel"] = dw.kernel
    if dw.dilation != 1:
        keys["dilation"] = dw.dilation
    if hidden % c_in == 0:
        keys["t"] = hidden // c_in
    else:
        keys["expand"] = hidden
    keys["out"] = out
    if se is not None:
        keys["se"] = (se, c_in, hidden)  # its rule is chosen with the other blocks' (_se_rules)
    keys["stride"] = dw.stride
    keys["act"] = dw.act
    if not dw.bn:
        keys["bn"] = False
    if dw.bias:  # BatchNorm folded into the convolutions by the exporter
        keys["bias"] = True
    residual = dw.stride == 1 and c_in == out
    if project.residual != residual:
        where = "has a" if project.residual else "has no"
        raise _fail(project, source, f"the block {where} residual add, where a spec's inverted residual "
                                     f"adds one exactly when the stride is 1 and the widths agree "
                                     f"({c_in} -> {out}, stride {dw.stride})")
    return keys, j + 1


def spec_rows(layers: tuple[Layer, ...], source: str) -> tuple[list[dict], int]:
    """The spec rows of ``layers``, in order, and the classes of the
    classifier (0 if the model has none)."""
    rows: list[dict] = []
    todo = list(layers)
    classes = 0
    pooled = False
    while todo:
        layer = todo[0]
        if layer.kind in ("pw", "dw"):
            block = _inverted_residual(todo, source)
            if block is not None:
                keys, taken = block
                rows.append(keys)
                del todo[:taken]
                continue
        if layer.kind == "dw" and len(todo) > 1 and todo[1].kind == "pw":
            dw, pw = todo[0], todo[1]
            if (dw.act, dw.bn, dw.bias) == (pw.act, pw.bn, pw.bias) and pw.stride == 1 and not pw.residual \
                    and not dw.residual:
                keys = {"kind": "dwsep"}
                if dw.kernel != 3:
                    keys["kernel"] = dw.kernel
                if dw.dilation != 1:
                    keys["dilation"] = dw.dilation
                keys.update(out=pw.out_shape[0], stride=dw.stride, act=dw.act)
                if not dw.bn:
                    keys["bn"] = False
                if dw.bias:
                    keys["bias"] = True
                rows.append(keys)
                del todo[:2]
                continue
        if layer.residual:
            raise _fail(layer, source, "a residual add around layers that are not one inverted residual block "
                                       "cannot be written as a spec")
        if layer.kind == "pw" and layer.in_shape[1:] == (1, 1) and not layer.bn and pooled:
            # a 1x1 conv on the pooled 1x1 map is a fully connected layer (Keras writes its
            # classifier so): the same weights and mult-adds, and an fc maps to the classes
            rows.append(_fc_keys(layer))
        elif layer.kind in ("conv", "dw", "pw"):
            rows.append(_conv_keys(layer))
        elif layer.kind == "se":
            raise _fail(layer, source, "squeeze-and-excite outside an inverted residual block cannot be written "
                                       "as a spec")
        elif layer.kind == "avgpool":
            if layer.kernel is not None or layer.out_shape[1:] != (1, 1):
                raise _fail(layer, source, "a windowed average pooling cannot be written as a spec (only global "
                                           "pooling)")
            rows.append({"kind": "avgpool"})
            pooled = True
        elif layer.kind == "maxpool":
            rows.append({"kind": "maxpool", "kernel": layer.kernel, "stride": layer.stride})
        elif layer.kind == "dropout":
            rows.append({"kind": "dropout", "p": layer.p})
        elif layer.kind == "fc":
            rows.append(_fc_keys(layer))
        else:
            raise _fail(layer, source, f"a layer of kind {layer.kind!r} cannot be written as a spec")
        del todo[0]
    _se_rules([(row, *row["se"]) for row in rows if "se" in row], source)
    fcs = [row for row in rows if row["kind"] == "fc"]
    if fcs and rows[-1] is fcs[-1] and fcs[-1]["act"] == "none":
        classes = fcs[-1].pop("out")
    return _repeats(rows), classes


def _repeats(rows: list[dict]) -> list[dict]:
    """Consecutive equal rows as one row with ``repeat``: the later ones with
    stride 1, the first with any stride (the MobileNetV2 table's n and s)."""
    merged: list[dict] = []
    for row in rows:
        last = merged[-1] if merged else None
        if last is not None and row["kind"] in ("conv", "dw", "pw", "dwsep", "inverted_residual") \
                and row.get("stride", 1) == 1 and _same_but_stride(last, row):
            last["repeat"] = last.get("repeat", 1) + 1
            continue
        merged.append(dict(row))
    return merged


def _same_but_stride(first: dict, row: dict) -> bool:
    ignore = ("stride", "repeat")
    return {k: v for k, v in first.items() if k not in ignore} == {k: v for k, v in row.items() if k not in ignore}


def imported(layers: tuple[Layer, ...], name: str, source: str,
             input_shape: tuple[int, int, int] | None = None) -> Imported:
    """The spec of ``layers`` (a real model's, at α = 1) whose input is
    ``input_shape`` (C, H, W; default: the first layer's input)."""
    rows, classes = spec_rows(layers, source)
    acts = Counter(row["act"] for row in rows if row["kind"] != "fc" and "act" in row)
    activation = acts.most_common(1)[0][0] if acts else "relu"
    for row in rows:
        if row.get("act") == activation and row["kind"] != "fc":
            del row["act"]
        elif row["kind"] == "fc" and row.get("act") == "none":
            del row["act"]
    rules = [row["se"] for row in rows if "se" in row]
    se = rules[0] if rules and all(rule == rules[0] for rule in rules) else None
    if se is not None:
        for row in rows:
            if "se" in row:
                row["se"] = True
        if se == _V3_SQUEEZE:
            se = None
    channels, *resolution = input_shape or layers[0].in_shape
    return Imported(name=_spec_name(name), source=source, channels=channels,
                    resolution=tuple(resolution), classes=classes or 1, activation=activation,
                    rows=tuple(rows), se=se)


def _spec_name(name: str) -> str:
    cleaned = re.sub(r"[^A-Za-z0-9_]+", "_", name).strip("_")
    return cleaned or "imported"


_ORDER = ("kind", "kernel", "t", "expand", "out", "groups", "dilation", "se", "stride", "repeat", "act", "bn",
          "bias", "p")


def _value(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k}: {_value(v)}" for k, v in value.items()) + "}"
    if isinstance(value, float):
        return repr(value)
    return str(value)


def spec_text(spec: Imported) -> str:
    """The spec as YAML, one flow mapping per row, aligned like configs/."""
    height, width = spec.resolution
    resolution = height if height == width else f"[{height}, {width}]"
    lines = [
        f"# {spec.name}, imported by mnsize from {spec.source}: the model as it is, at alpha 1.",
        "# Widths scale with alpha by the rule below (the source records none; this is the",
        "# MobileNetV2/V3 rule): check another alpha against the real model with mnsize verify --against.",
        f"name: {spec.name}",
        f"source: {_quoted(spec.source)}",
        f"input: {{channels: {spec.channels}, resolution: {resolution}}}",
        "width: {rule: divisible, divisor: 8}",
        f"classes: {spec.classes}",
        f"activation: {spec.activation}",
        *([f"se: {_value(spec.se)}"] if spec.se else []),
        "layers:",
    ]
    columns = [key for key in _ORDER if any(key in row for row in spec.rows)]
    cells = [{key: f"{key}: {_value(row[key])}" for key in columns if key in row} for row in spec.rows]
    widths = {key: max((len(row[key]) + 2 for row in cells if key in row), default=0) for key in columns}
    for row in cells:
        present = [key for key in columns if key in row]
        parts = [(row[key] + ("," if key != present[-1] else "")).ljust(widths[key]) if key in row
                 else " " * widths[key] for key in columns]
        lines.append("  - {" + "".join(parts).rstrip() + "}")
    return "\n".join(lines) + "\n"


def _quoted(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'
