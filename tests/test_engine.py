"""Width rules, expansion and cost formulas, checked against closed forms."""

from __future__ import annotations

import math
from fractions import Fraction

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mnsize import MnsizeError, count, expand
from mnsize.costs import COST_FORMULAS, layer_cost
from mnsize.expand import resolution_from_rho, to_alpha
from mnsize.width import WidthRule, make_divisible

alphas = st.decimals(min_value="0.05", max_value="1.40", places=2).map(str)
sides = st.integers(min_value=1, max_value=600)


# --------------------------------------------------------------------------- width rules


def test_floor_rule_is_exact_where_floats_are_not():
    # in floats, int(100 * 0.29) is 28
    assert WidthRule("floor").apply(100, to_alpha("0.29")) == 29
    assert WidthRule("floor").apply(100, to_alpha(0.29)) == 29  # floats are read as the decimal they print as


@given(c=st.integers(1, 4096), alpha=alphas, minimum=st.integers(0, 16))
def test_floor_rule_matches_integer_arithmetic(c, alpha, minimum):
    whole, _, frac = alpha.partition(".")
    hundredths = int(whole) * 100 + int((frac + "00")[:2])
    assert WidthRule("floor", minimum=minimum).apply(c, to_alpha(alpha)) == max(minimum, c * hundredths // 100)


@pytest.mark.parametrize("channels,alpha,expected", [
    (32, "0.35", 16),    # MobileNetV2-0.35's first conv: 11.2 rounds to 8, below 90% of 11.2, so 16
    (16, "0.35", 8),
    (24, "0.35", 8),
    (96, "0.75", 72),
    (320, "0.35", 112),
    (1280, "1.4", 1792),
    (32, "1.0", 32),
    (20, "1.0", 24),     # 20 + 4 = 24: halves round up
])
def test_make_divisible_reference_values(channels, alpha, expected):
    assert WidthRule("divisible").apply(channels, to_alpha(alpha)) == expected


@given(value=st.fractions(min_value=Fraction(1, 100), max_value=5000), divisor=st.sampled_from([4, 8, 16]))
def test_make_divisible_properties(value, divisor):
    result = make_divisible(value, divisor)
    assert result % divisor == 0
    assert result >= divisor
    assert result >= Fraction(9, 10) * value
    assert result <= max(divisor, value + divisor)


@pytest.mark.parametrize("text", ["0", "-1", "nan", "inf", "abc", "", "1/0", "101", True, None])
def test_bad_alpha_is_refused(text):
    from mnsize.errors import ConfigError

    with pytest.raises(ConfigError, match="alpha must be"):
        to_alpha(text)


# --------------------------------------------------------------------------- expansion


def test_same_padding_and_non_square(v1):
    layers = expand(v1, "1.0", (225, 97))
    assert layers[0].out_shape == (32, 113, 49)  # ceil(225/2), ceil(97/2)
    assert layers[-2].out_shape == (1024, 1, 1)
    assert layers[-3].out_shape[1:] == (8, 4)  # five stride-2 stages after conv1: 113 -> 57 -> 29 -> 15 -> 8


@pytest.mark.parametrize("rho,expected", [
    ("0.571", 128),      # 127.904
    ("0.714", 160),      # 159.936: truncation would give 159
    ("0.6", 134),        # 134.4: ceil would give 135
    ("269/448", 135),    # 134.5 exactly: halves go up; Python's round() (to even) gives 134
    ("271/448", 136),    # 135.5: rounding halves down would give 135
    ("1.4", 314),        # 313.6
    ("3/448", 2),        # 1.5
    ("1/1000", 1),       # 0.224: never below one pixel
])
def test_rho_rounds_half_up(v1, rho, expected):
    assert resolution_from_rho(v1, Fraction(rho)) == (expected, expected)


def test_names_follow_the_spec(v1):
    names = [layer.name for layer in expand(v1)]
    assert names[:3] == ["conv1", "dwsep1.dw", "dwsep1.pw"]
    assert names[-2:] == ["avgpool1", "fc1"]
    assert len(set(names)) == len(names)


def test_repeat_strides_only_first(tiny):
    spec = tiny("  - {kind: dwsep, out: 8, stride: 2, repeat: 3, name: stage}\n")
    layers = expand(spec)
    assert [layer.name for layer in layers] == [
        "stage_1.dw", "stage_1.pw", "stage_2.dw", "stage_2.pw", "stage_3.dw", "stage_3.pw"]
    assert [layer.stride for layer in layers if layer.kind == "dw"] == [2, 1, 1]


def test_unscaled_widths_and_fc_out(tiny):
    spec = tiny("  - {kind: conv, kernel: 3, out: 16}\n  - {kind: pw, out: 64, scale: false}\n"
                "  - avgpool\n  - {kind: fc, out: 100}\n  - {kind: fc}\n")
    layers = expand(spec, "0.5")
    assert [layer.out_shape[0] for layer in layers] == [8, 64, 64, 50, 10]


def test_zero_channels_is_an_error_naming_the_layer(tiny):
    spec = tiny("  - {kind: conv, kernel: 3, out: 16}\n")
    with pytest.raises(MnsizeError, match=r"tiny.yaml:7: layer 1 \(conv\): key 'out': .* 0 channels"):
        expand(spec, "0.05")


def test_fc_flattens_its_input(tiny):
    spec = tiny("  - {kind: conv, kernel: 3, out: 4, stride: 8}\n  - {kind: fc}\n")
    report = count(expand(spec))
    assert report.rows[1].madds == 4 * 4 * 4 * 10


def test_unknown_kind_has_no_silent_zero(v1, monkeypatch):
    layer = expand(v1)[0]
    monkeypatch.delitem(COST_FORMULAS, "conv")
    with pytest.raises(MnsizeError, match="no cost formula for kind 'conv'"):
        layer_cost(layer)


# --------------------------------------------------------------------------- costs


@settings(max_examples=60, deadline=None)
@given(alpha=alphas, h=sides, w=sides)
def test_v1_closed_form(v1, alpha, h, w):
    """Every layer against the paper's closed forms, D_K^2 M D_F^2 and M N D_F^2."""
    report = count(expand(v1, alpha, (h, w)))
    for row in report.rows:
        lay = row.layer
        c_in, _, _ = lay.in_shape
        c_out, ho, wo = lay.out_shape
        expected = {
            "conv": 9 * c_in * c_out * ho * wo,
            "dw": 9 * c_in * ho * wo,
            "pw": c_in * c_out * ho * wo,
            "avgpool": 0,
            "fc": c_in * c_out,
        }[lay.kind]
        assert row.madds == expected
        assert lay.out_shape[1:] == (math.ceil(lay.in_shape[1] / (lay.stride or lay.in_shape[1])),
                                     math.ceil(lay.in_shape[2] / (lay.stride or lay.in_shape[2])))
    assert (report.madds, report.params, report.bn_params) == v1_by_hand(Fraction(alpha), h, w)


# Table 1 of the paper after the first conv: (out channels, stride) of each depthwise-separable block
V1_BLOCKS = [(64, 1), (128, 2), (128, 1), (256, 2), (256, 1), (512, 2), *[(512, 1)] * 5, (1024, 2), (1024, 1)]


def v1_by_hand(alpha: Fraction, h: int, w: int, classes: int = 1000) -> tuple[int, int, int]:
    """MobileNetV1's totals from Table 1 alone: int(c x alpha) channels, at least 8 (TF-slim); SAME
    padding; every conv followed by BatchNorm (2 parameters per channel); an FC with bias."""
    def width(c):
        return max(8, math.floor(c * alpha))

    h, w, c = -(-h // 2), -(-w // 2), width(32)
    madds, params, bn_params = 9 * 3 * c * h * w, 9 * 3 * c, 2 * c
    for out, stride in V1_BLOCKS:
        h, w, o = -(-h // stride), -(-w // stride), width(out)
        madds += 9 * c * h * w + c * o * h * w
        params += 9 * c + c * o
        bn_params += 2 * c + 2 * o
        c = o
    return madds + c * classes, params + c * classes + classes, bn_params


def test_v1_by_hand_is_the_published_count():
    assert v1_by_hand(Fraction(1), 224, 224) == (568_740_352, 4_210_088, 21_888)
    assert v1_by_hand(Fraction(1, 4), 224, 224) == (41_030_272, 464_600, 5_472)
    assert v1_by_hand(Fraction(1, 2), 160, 160)[0] == 76_524_800


@settings(max_examples=40, deadline=None)
@given(a=alphas, b=alphas, r1=st.integers(8, 400), r2=st.integers(8, 400))
def test_costs_grow_with_alpha_and_resolution(v1, a, b, r1, r2):
    small_a, big_a = sorted((Fraction(a), Fraction(b)))
    small_r, big_r = sorted((r1, r2))
    small = count(expand(v1, small_a, small_r))
    big = count(expand(v1, big_a, big_r))
    assert small.madds <= big.madds
    assert small.params <= big.params
    assert count(expand(v1, small_a, big_r)).params == small.params  # params do not depend on resolution
