"""The paper's figures (shared FIGURES.md), reproduced exactly by the engine."""

from __future__ import annotations

import pytest

from mnsize import count, expand, parse_spec
from mnsize.analysis import by_kind, standard_comparison

from .conftest import report_of

# (alpha, resolution, mult-adds, params, bn_params): exact totals, FC to 1000 classes included
V1_EXACT = [
    ("1.0", 224, 568_740_352, 4_210_088, 21_888),
    ("1.0", 192, 418_121_728, 4_210_088, 21_888),
    ("1.0", 160, 290_675_200, 4_210_088, 21_888),
    ("1.0", 128, 186_400_768, 4_210_088, 21_888),
    ("0.75", 224, 325_400_448, 2_569_144, 16_416),
    ("0.5", 224, 149_497_088, 1_320_648, 10_944),
    ("0.25", 224, 41_030_272, 464_600, 5_472),
]


@pytest.mark.parametrize("alpha,res,madds,params,bn_params", V1_EXACT)
def test_v1_exact_totals(alpha, res, madds, params, bn_params):
    report = report_of("mobilenet_v1", alpha, res)
    assert (report.madds, report.params, report.bn_params) == (madds, params, bn_params)


def test_v1_pytorch_numel_and_body(v1):
    report = count(expand(v1))
    assert report.params + report.bn_params == 4_231_976  # PyTorch numel
    fc = report.rows[-1]
    assert fc.layer.kind == "fc"
    # the body alone (TF-slim's stated figures)
    assert report.madds - fc.madds == 567_716_352
    assert report.params - fc.params == 3_185_088


def test_v1_has_28_layers_with_madds_and_rows_add_up(v1):
    report = count(expand(v1))
    costed = [r for r in report.rows if r.madds > 0]
    assert len(costed) == 28
    assert [r.layer.kind for r in costed].count("dw") == 13
    assert [r.layer.kind for r in costed].count("pw") == 13
    assert sum(r.madds for r in report.rows) == 568_740_352
    assert sum(r.params for r in report.rows) == 4_210_088
    assert sum(r.bn_params for r in report.rows) == 21_888
    assert report.rows[-2].layer.in_shape == (1024, 7, 7)  # the last dw is stride 1: 7x7 at the end


def test_table2_shares(v1):
    """Table 2: mult-adds and params per layer type. Param shares come out with
    FC weights counted without the bias; conv 3x3's 1.19% is a transposition of 1.91%."""
    report = count(expand(v1))
    kinds = {k.kind: k for k in by_kind(report)}
    assert [k.kind for k in by_kind(report)][:4] == ["conv 1x1", "dw 3x3", "conv 3x3", "fc"]
    classes = 1000
    params_no_fc_bias = report.params - classes
    expected = {"conv 1x1": (94.86, 74.59), "dw 3x3": (3.06, 1.06), "conv 3x3": (1.91, 0.02), "fc": (0.18, 24.33)}
    for kind, (madds_pct, params_pct) in expected.items():
        k = kinds[kind]
        weights = k.params - (classes if kind == "fc" else 0)
        assert round(100 * k.madds / report.madds, 2) == madds_pct
        assert round(100 * weights / params_no_fc_bias, 2) == params_pct


TABLE3_SPEC = """
name: table3
source: Howard et al. 2017, Table 3
input: {channels: 3, resolution: 14}
width: {rule: floor}
classes: 1
layers:
  - {kind: pw, out: 512}          # brings 512 (x alpha) channels to the layer under study
  - {kind: dwsep, out: 512, stride: 1}
"""


@pytest.mark.parametrize("alpha,rho,madds_m,params_m", [
    ("1.0", None, 52.3, 0.27),
    ("0.75", None, 29.6, 0.15),
    ("0.75", "0.714", 15.1, 0.15),
])
def test_table3_single_layer(alpha, rho, madds_m, params_m):
    from fractions import Fraction

    from mnsize.expand import resolution_from_rho

    spec = parse_spec(TABLE3_SPEC, "table3.yaml")
    resolution = resolution_from_rho(spec, Fraction(rho)) if rho else None
    report = count(expand(spec, alpha, resolution))
    (pair,) = standard_comparison(report).pairs
    assert round(pair.madds / 1e6, 1) == madds_m
    assert round(pair.params / 1e6, 2) == params_m
    if alpha == "1.0":  # the full convolution it replaces: 462M mult-adds, 2.36M params
        assert pair.standard_madds == 3 * 3 * 512 * 512 * 14 * 14 == 462_422_016
        assert round(pair.standard_params / 1e6, 2) == 2.36
    channels = 512 if alpha == "1.0" else 384
    assert pair.ratio == pair.formula == Fraction(1, channels) + Fraction(1, 9)  # exactly 1/N + 1/K^2


def test_table4_conv_mobilenet():
    report = report_of("mobilenet_v1_conv")
    assert report.madds == 4_867_293_184
    assert report.madds - report.rows[-1].madds == 4_866_269_184
    assert report.params == 29_282_120
    assert round(report.madds / 1e6) == 4867  # the paper prints 4866: the body alone


def test_standard_comparison_of_v1_is_conv_mobilenet(v1):
    cmp = standard_comparison(count(expand(v1)))
    assert len(cmp.pairs) == 13
    conv = report_of("mobilenet_v1_conv")
    assert (cmp.standard_madds, cmp.standard_params) == (conv.madds, conv.params)


def test_table5_shallow_mobilenet():
    report = report_of("mobilenet_v1_shallow")
    assert (report.madds, report.params) == (307_323_392, 2_876_328)


@pytest.mark.parametrize("alpha,res,madds_m,params_m", [
    ("1.0", 224, 569, 4.2), ("0.75", 224, 325, 2.6), ("0.5", 224, 149, 1.3), ("0.25", 224, 41, 0.5),  # Table 6
    ("1.0", 192, 418, 4.2), ("1.0", 128, 186, 4.2),  # Table 7
])
def test_tables_6_and_7_round_to_the_paper(alpha, res, madds_m, params_m):
    report = report_of("mobilenet_v1", alpha, res)
    assert round(report.madds / 1e6) == madds_m
    assert round(report.params / 1e6, 1) == params_m


def test_table7_160_is_the_224_count_scaled_by_rho_squared():
    """The paper prints 290 for 160; the exact count is 290.7M (it seems to have
    scaled the 224 count by rho^2 = (160/224)^2 and truncated)."""
    report = report_of("mobilenet_v1", "1.0", 160)
    assert report.madds == 290_675_200
    assert round(report.madds / 1e6) == 291  # what the paper would print from the exact count
    assert int(report_of("mobilenet_v1", "1.0", 224).madds * (160 / 224) ** 2 / 1e6) == 290


def test_table9_half_mobilenet_160():
    """Exact: 76.52M; the paper prints 76 (truncated here, where Table 6 rounds 568.7 to 569)."""
    report = report_of("mobilenet_v1", "0.5", 160)
    assert report.madds == 76_524_800
    assert int(report.madds / 1e6) == 76
    assert round(report.params / 1e6, 2) == 1.32


def test_classes_changes_only_the_classifier(v1):
    base = count(expand(v1))
    k1001 = count(expand(v1, classes=1001))
    assert k1001.madds - base.madds == 1024
    assert k1001.params - base.params == 1024 + 1
