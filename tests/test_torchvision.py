"""The specs that follow torchvision's model code, against torchvision.

torchvision cannot be installed where the tests run, so two things stand in
for it. ``tests/data/torchvision_reference.yaml`` holds figures measured from
or published with torchvision's models, each with its provenance; every one
must equal mnsize's count. And an oracle written here from torchvision's
source (torchvision/models/mobilenetv2.py, mobilenetv3.py, mnasnet.py,
efficientnet.py) evaluates its channel formulas in Python floats, as
torchvision does, and gives every conv and linear layer's output width; the
expanded specs must give the same widths at any width multiplier. The oracle
shares no code with mnsize.
"""

from __future__ import annotations

import dataclasses
import math
from decimal import ROUND_HALF_EVEN, Decimal
from fractions import Fraction
from pathlib import Path

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from mnsize import count, expand, load_spec
from mnsize.conventions import CONVENTIONS
from mnsize.width import WidthRule

REFERENCE = Path(__file__).parent / "data" / "torchvision_reference.yaml"
ENTRIES = yaml.safe_load(REFERENCE.read_text())["references"]
PROVENANCE_KEYS = ("kind", "torchvision", "how")


def entry_id(entry: dict) -> str:
    return f"{entry.get('model')}@{entry.get('width')}"


# --------------------------------------------------------------------------- the reference figures


@pytest.mark.parametrize("entry", ENTRIES, ids=entry_id)
def test_reference_has_provenance(entry):
    provenance = entry.get("provenance") or {}
    missing = [key for key in PROVENANCE_KEYS if not str(provenance.get(key, "")).strip()]
    assert missing == [], f"{entry_id(entry)}: provenance lacks {', '.join(missing)}"
    assert provenance["kind"] in ("measured", "published")
    # a figure needs something to check: an exact count or torchvision's rounded one
    assert {"madds", "params", "gmadds"} & set(entry)


def test_reference_holds_the_measured_widths():
    measured = {(e["model"], e["width"]) for e in ENTRIES if e["provenance"]["kind"] == "measured"}
    assert measured == {("mobilenet_v3_large", w) for w in ("0.58", "1.025", "1.14")}


@pytest.mark.parametrize("entry", ENTRIES, ids=entry_id)
def test_reference_equals_mnsize(entry):
    layers = expand(load_spec(entry["model"]), entry["width"], entry["resolution"], entry["classes"])
    madds = count(layers).madds
    if "madds" in entry:
        assert madds == entry["madds"]
    if "params" in entry:
        # torchvision's num_params is numel() over all parameters: BatchNorm's two per channel included
        assert count(layers, CONVENTIONS["torch"]).params == entry["params"]
    if "gmadds" in entry:
        billions = (Decimal(madds) / 10**9).quantize(Decimal("0.001"), rounding=ROUND_HALF_EVEN)
        assert billions == Decimal(entry["gmadds"])


# --------------------------------------------------------------------------- the oracle
#
# Each function below gives torchvision's network at width multiplier ``w`` (a
# Python float, as torchvision receives it) as a list of (kind, width): the
# output width of every conv and linear layer in forward order. Kinds: conv
# (the stem), pw (1x1), dw (depthwise), se.squeeze and se.excite (the two 1x1
# convs of squeeze-and-excite), fc (linear).


def divisible(value: float, divisor: int = 8) -> int:
    """_make_divisible of torchvision's models/_utils.py (from TF-slim): the
    nearest multiple of ``divisor`` (halves up), at least ``divisor``, one
    ``divisor`` more if that lost over 10% of ``value``. Float comparisons, as
    there."""
    nearest = max(divisor, math.floor(value + divisor / 2) // divisor * divisor)
    return nearest if nearest >= 0.9 * value else nearest + divisor


def round_to_multiple(value: float, divisor: int = 8, round_up_bias: float = 0.9) -> int:
    """_round_to_multiple_of of torchvision's mnasnet.py: the same rounding,
    with the 90% floor named ``round_up_bias``."""
    nearest = max(divisor, math.floor(value + divisor / 2) // divisor * divisor)
    return nearest + divisor if nearest < round_up_bias * value else nearest


# MobileNetV2 (mobilenetv2.py): t, c, n of its inverted residual setting (strides change no width)
V2_SETTING = ((1, 16, 1), (6, 24, 2), (6, 32, 3), (6, 64, 4), (6, 96, 3), (6, 160, 3), (6, 320, 1))


def torchvision_v2(w: float, classes: int = 1000) -> list[tuple[str, int]]:
    stem = divisible(32 * w)
    layers, c_in = [("conv", stem)], stem
    for t, c, n in V2_SETTING:
        c_out = divisible(c * w)
        for _ in range(n):
            hidden = int(round(c_in * t))
            if t != 1:
                layers.append(("pw", hidden))
            layers += [("dw", hidden), ("pw", c_out)]
            c_in = c_out
    # the last conv never narrows below 1280
    return layers + [("pw", divisible(1280 * max(1.0, w))), ("fc", classes)]


# MobileNetV3 (mobilenetv3.py): input, expanded, out, squeeze-and-excite of each bneck row
V3_LARGE = (
    (16, 16, 16, False), (16, 64, 24, False), (24, 72, 24, False), (24, 72, 40, True), (40, 120, 40, True),
    (40, 120, 40, True), (40, 240, 80, False), (80, 200, 80, False), (80, 184, 80, False), (80, 184, 80, False),
    (80, 480, 112, True), (112, 672, 112, True), (112, 672, 160, True), (160, 960, 160, True),
    (160, 960, 160, True),
)
V3_SMALL = (
    (16, 16, 16, True), (16, 72, 24, False), (24, 88, 24, False), (24, 96, 40, True), (40, 240, 40, True),
    (40, 240, 40, True), (40, 120, 48, True), (48, 144, 48, True), (48, 288, 96, True), (96, 576, 96, True),
    (96, 576, 96, True),
)


def torchvision_v3(setting, last_channel: int, w: float, classes: int = 1000) -> list[tuple[str, int]]:
    # every width of a row goes through adjust_channels: _make_divisible(c * width_mult, 8)
    layers = [("conv", divisible(setting[0][0] * w))]
    for c_in, c_exp, c_out, se in setting:
        c_in, c_exp, c_out = divisible(c_in * w), divisible(c_exp * w), divisible(c_out * w)
        if c_exp != c_in:
            layers.append(("pw", c_exp))
        layers.append(("dw", c_exp))
        if se:
            layers += [("se.squeeze", divisible(c_exp // 4)), ("se.excite", c_exp)]
        layers.append(("pw", c_out))
    last_conv = 6 * divisible(setting[-1][2] * w)
    return layers + [("pw", last_conv), ("fc", divisible(last_channel * w)), ("fc", classes)]


# MNASNet (mnasnet.py): _get_depths' table, and each stack's expansion and repeats
MNASNET_DEPTHS = (32, 16, 24, 40, 80, 96, 192, 320)
MNASNET_STACKS = ((3, 3), (3, 3), (6, 3), (6, 2), (6, 4), (6, 1))   # (expansion factor, repeats)


def torchvision_mnasnet(alpha: float, classes: int = 1000) -> list[tuple[str, int]]:
    depths = [round_to_multiple(d * alpha, 8) for d in MNASNET_DEPTHS]
    layers = [("conv", depths[0]), ("dw", depths[0]), ("pw", depths[1])]
    c_in = depths[1]
    for (expansion, repeats), c_out in zip(MNASNET_STACKS, depths[2:]):
        for _ in range(repeats):
            mid = c_in * expansion   # a plain product: no rounding
            layers += [("pw", mid), ("dw", mid), ("pw", c_out)]
            c_in = c_out
    # the final 1x1 conv is 1280 wide at every alpha
    return layers + [("pw", 1280), ("fc", classes)]


# EfficientNet-B0 (efficientnet.py): expand ratio, input, out, layers of each MBConv row
EFFICIENTNET_B0 = (
    (1, 32, 16, 1), (6, 16, 24, 2), (6, 24, 40, 2), (6, 40, 80, 3), (6, 80, 112, 3), (6, 112, 192, 4),
    (6, 192, 320, 1),
)


def torchvision_efficientnet(setting, w: float, depth: float = 1.0, classes: int = 1000) -> list[tuple[str, int]]:
    layers = [("conv", divisible(setting[0][1] * w))]
    for ratio, c_in, c_out, n in setting:
        c_in, c_out = divisible(c_in * w), divisible(c_out * w)
        for block in range(int(math.ceil(n * depth))):
            block_in = c_in if block == 0 else c_out
            expanded = divisible(block_in * ratio)   # adjust_channels(input, expand_ratio)
            if expanded != block_in:
                layers.append(("pw", expanded))
            # squeeze-and-excite squeezes to a quarter of the block's input, not of its expansion
            layers += [("dw", expanded), ("se.squeeze", max(1, block_in // 4)), ("se.excite", expanded),
                       ("pw", c_out)]
    return layers + [("pw", 4 * divisible(setting[-1][2] * w)), ("fc", classes)]


ORACLES = {
    "mobilenet_v2": torchvision_v2,
    "mobilenet_v3_large": lambda w: torchvision_v3(V3_LARGE, 1280, w),
    "mobilenet_v3_small": lambda w: torchvision_v3(V3_SMALL, 1024, w),
    "mnasnet1_0": torchvision_mnasnet,
    "efficientnet_b0": lambda w: torchvision_efficientnet(EFFICIENTNET_B0, w),
}


def mnsize_layers(spec, width: str) -> list[tuple[str, str, int]]:
    """(name, kind, width) of every conv and linear layer of the expanded spec,
    in the oracle's kinds: a squeeze-and-excite layer is its two 1x1 convs."""
    rows = []
    for layer in expand(spec, width):
        if layer.kind in ("conv", "dw", "pw", "fc"):
            rows.append((layer.name, layer.kind, layer.out_shape[0]))
        elif layer.kind == "se":
            rows += [(layer.name, "se.squeeze", layer.squeeze), (layer.name, "se.excite", layer.out_shape[0])]
    return rows


def differences(expected: list[tuple[str, int]], rows: list[tuple[str, str, int]]) -> str:
    """The layers where mnsize and the oracle disagree, for the failure message."""
    lines = [f"{name}: mnsize {kind} {ours}, torchvision {their_kind} {theirs}"
             for (name, kind, ours), (their_kind, theirs) in zip(rows, expected)
             if (kind, ours) != (their_kind, theirs)]
    if len(rows) != len(expected):
        lines.append(f"mnsize has {len(rows)} conv and linear layers, torchvision {len(expected)}")
    return "; ".join(lines)


def assert_matches_torchvision(model: str, width: str) -> None:
    expected = ORACLES[model](float(width))
    rows = mnsize_layers(load_spec(model), width)
    assert [(kind, w) for _, kind, w in rows] == expected, f"{model} at {width}: {differences(expected, rows)}"


MODELS = sorted(ORACLES)
#: multipliers whose channel products fall just below a rounding boundary in doubles
#: (0.29 and 0.35 are where Keras's truncating MobileNet rule slips)
FLOAT_TRAPS = ("0.58", "1.025", "1.14", "0.29", "0.35")
#: every width of 1 to 4 decimals in 0.05..3.0 where doubles and exact arithmetic round one of
#: these models' widths apart (found by scanning that grid): random draws would rarely land on one
ROUNDING_SPLITS = {
    "mobilenet_v3_large": ("0.5125", "0.58", "1.025", "1.14", "2.05", "2.1125", "2.26", "2.3"),
    "mobilenet_v3_small": ("2.05",),
}


@st.composite
def decimal_widths(draw) -> str:
    """A width multiplier in [0.05, 3.0] written with 1 to 4 decimals."""
    places = draw(st.integers(1, 4))
    scale = 10**places
    units = draw(st.integers(-(-5 * scale // 100), 3 * scale))
    return f"{units // scale}.{units % scale:0{places}d}"


@pytest.mark.parametrize("model,width", [(m, w) for m in MODELS for w in FLOAT_TRAPS + ROUNDING_SPLITS.get(m, ())])
def test_oracle_at_float_traps(model, width):
    assert_matches_torchvision(model, width)


@pytest.mark.parametrize("model", MODELS)
@settings(max_examples=150, deadline=None)
@given(width=st.one_of(st.sampled_from(FLOAT_TRAPS), decimal_widths()))
def test_oracle_at_any_width(model, width):
    assert_matches_torchvision(model, width)


def test_the_traps_fall_below_a_boundary_in_doubles():
    """What the traps are for: each puts some channel product just under a
    rounding boundary in doubles, where exact arithmetic sits on it."""
    assert 200 * 0.58 == 115.99999999999999 and divisible(200 * 0.58) == 112
    exact = WidthRule(rule="divisible", divisor=8, arithmetic="exact")
    in_doubles = dataclasses.replace(exact, arithmetic="float")
    assert (exact.apply(200, Fraction("0.58")), in_doubles.apply(200, Fraction("0.58"))) == (120, 112)


def test_exact_arithmetic_gives_other_widths_than_torchvision():
    """The same V3-Large table rounded exactly differs from torchvision at 0.58:
    the float arithmetic of the spec is what makes it equal torchvision."""
    spec = load_spec("mobilenet_v3_large")
    exact = dataclasses.replace(spec, width=dataclasses.replace(spec.width, arithmetic="exact"))
    expected = ORACLES["mobilenet_v3_large"](0.58)
    rows = mnsize_layers(exact, "0.58")
    changed = {(name, kind): (ours, theirs) for (name, kind, ours), (_, theirs) in zip(rows, expected)
               if ours != theirs}
    assert len(rows) == len(expected)
    # the block expanding to 200 x 0.58: 116 exactly (rounds to 120), 115.99999999999999 in doubles (112)
    assert changed[("ir8.expand", "pw")] == (120, 112)
    assert changed[("ir8.dw", "dw")] == (120, 112)
    assert count(expand(exact, "0.58")).madds != count(expand(spec, "0.58")).madds
    assert [(kind, w) for _, kind, w in mnsize_layers(spec, "0.58")] == expected


@pytest.mark.parametrize("model,width", [(m, w) for m, widths in sorted(ROUNDING_SPLITS.items()) for w in widths])
def test_exact_arithmetic_misses_torchvision_at_every_split(model, width):
    spec = load_spec(model)
    exact = dataclasses.replace(spec, width=dataclasses.replace(spec.width, arithmetic="exact"))
    expected = ORACLES[model](float(width))
    assert [(kind, w) for _, kind, w in mnsize_layers(exact, width)] != expected
    assert [(kind, w) for _, kind, w in mnsize_layers(spec, width)] == expected


def test_efficientnet_b0_depth_is_torchvisions():
    """efficientnet_b0 is built at depth_mult 1.0: each row's n becomes ceil(n * 1.0) blocks."""
    spec = load_spec("efficientnet_b0")
    assert spec.depth == 1
    blocks = [row.repeat for row in spec.layers if row.kind == "inverted_residual"]
    assert blocks == [int(math.ceil(n * 1.0)) for *_, n in EFFICIENTNET_B0]
