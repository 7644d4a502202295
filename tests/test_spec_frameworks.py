"""The spec keys that let a spec equal a framework's network exactly: the
width rule's arithmetic, truncation and expansion rounding, a row's own
width rule, explicit padding, and ``framework``."""

from __future__ import annotations

from fractions import Fraction

import pytest
from click.testing import CliRunner

from mnsize import SpecError, builtin_names, count, expand, load_spec, parse_spec
from mnsize.cli import cli
from mnsize.sweep import blocks
from mnsize.width import WidthRule, make_divisible

from .conftest import spec_text

HEADER = "name: tiny\nsource: test\ninput: {channels: 3, resolution: 32}\nwidth: %s\nclasses: 10\n"


def tiny(layers: str, width: str = "{rule: floor}", extra: str = ""):
    return parse_spec(spec_text(layers, HEADER % width + extra), "tiny.yaml")


def error_of(layers: str, width: str = "{rule: floor}", extra: str = "") -> str:
    with pytest.raises(SpecError) as info:
        tiny(layers, width, extra)
    return str(info.value)


def widths(spec, alpha, resolution=None) -> list[int]:
    return [lay.out_shape[0] for lay in expand(spec, alpha, resolution)]


# --------------------------------------------------------------------------- the width rule's arithmetic


@pytest.mark.parametrize("rule,channels,alpha,exact,floating", [
    ("floor", 100, "0.29", 29, 28),        # 100 x 0.29 = 28.999999999999996 in doubles
    ("divisible", 200, "0.58", 120, 112),  # 115.99999999999999 rounds down to a multiple of 8
    ("divisible", 240, "0.58", 136, 136),  # 139.2 either way
])
def test_float_arithmetic_repeats_the_doubles_error(rule, channels, alpha, exact, floating):
    assert WidthRule(rule).apply(channels, Fraction(alpha)) == exact
    assert WidthRule(rule, arithmetic="float").apply(channels, Fraction(alpha)) == floating
    assert int(channels * float(alpha)) == (floating if rule == "floor" else int(channels * float(alpha)))


def test_make_divisible_in_both_arithmetics():
    assert make_divisible(Fraction(116)) == make_divisible(116.0) == 120
    assert make_divisible(115.99999999999999) == 112
    assert make_divisible(Fraction(9)) == make_divisible(9.0) == 16      # 8 is below 90% of 9
    assert make_divisible(Fraction(36)) == make_divisible(36.0) == 40    # halves round up


def test_truncate_rounds_the_whole_number():
    # Keras's MobileNetV2 at 0.28: int(32 x 0.28) = 8 is a multiple of 8 and 8 >= 0.9 x 8;
    # without truncation 8.96 rounds to 8, which is below 90% of 8.96, so 16
    keras = WidthRule("divisible", arithmetic="float", truncate=True)
    assert keras.apply(32, Fraction("0.28")) == 8
    assert WidthRule("divisible", arithmetic="float").apply(32, Fraction("0.28")) == 16


def test_expansions_round_by_the_rule_or_to_nearest():
    nearest, rule = WidthRule("divisible"), WidthRule("divisible", expansions="rule")
    assert nearest.expanded(20, Fraction("2.3")) == 46
    assert rule.expanded(20, Fraction("2.3")) == 48
    assert WidthRule("floor").expanded(5, Fraction("2.5")) == 12   # round() halves to even
    assert WidthRule("floor", expansions="rule").expanded(5, Fraction("2.5")) == 12  # floor
    assert WidthRule("floor", expansions="rule").expanded(7, Fraction("2.5")) == 17


def test_float_depth_follows_the_arithmetic():
    layers = "  - {kind: conv, kernel: 3, out: 8}\n  - {kind: dwsep, out: 8, repeat: 25}\n"
    exact = tiny(layers, extra="depth: 2.2\n")
    floating = tiny(layers, width="{rule: floor, arithmetic: float}", extra="depth: 2.2\n")
    assert exact.layers[1].repeat == 55     # 25 x 22/10
    assert floating.layers[1].repeat == 56  # ceil(55.00000000000001), as torchvision computes it


def test_describe_names_the_arithmetic():
    assert WidthRule("divisible", arithmetic="float", truncate=True).describe() == \
        "divisible by 8, truncated first, in floating point"
    assert WidthRule("floor", minimum=8).describe() == "floor (min 8)"


# --------------------------------------------------------------------------- a row's own width rule


def test_a_row_width_replaces_the_spec_keys_it_names():
    spec = tiny("  - {kind: conv, kernel: 3, out: 32, width: {truncate: false}}\n"
                "  - {kind: pw, out: 32}\n",
                width="{rule: divisible, arithmetic: float, truncate: true}")
    stem, body = (spec.rule(row) for row in spec.layers)
    assert body == WidthRule("divisible", arithmetic="float", truncate=True)
    assert stem == WidthRule("divisible", arithmetic="float", truncate=False)
    assert widths(spec, "0.28") == [16, 8]


def test_a_row_naming_another_rule_keeps_the_arithmetic():
    spec = tiny("  - {kind: conv, kernel: 3, out: 100, width: {rule: floor}}\n",
                width="{rule: divisible, arithmetic: float}")
    assert spec.rule(spec.layers[0]) == WidthRule("floor", arithmetic="float")
    assert widths(spec, "0.29") == [28]


@pytest.mark.parametrize("width,layers,expected", [
    ("{rule: floor, arithmetic: double}", "  - {kind: dw}\n",
     "key 'width.arithmetic': expected one of exact, float, got 'double'"),
    ("{rule: floor, truncate: true}", "  - {kind: dw}\n",
     "key 'width.truncate': unknown key for the floor rule (expected rule, min, arithmetic, expansions)"),
    ("{rule: divisible, truncate: 1}", "  - {kind: dw}\n", "key 'width.truncate': expected true or false, got 1"),
    ("{rule: divisible, expansions: up}", "  - {kind: dw}\n",
     "key 'width.expansions': expected one of nearest, rule, got 'up'"),
    ("{rule: floor}", "  - {kind: conv, kernel: 3, out: 8, width: {divisor: 4}}\n",
     "layer 1 (conv): key 'width.divisor': unknown key for the floor rule"),
    ("{rule: floor}", "  - {kind: conv, kernel: 3, out: 8, width: 7}\n",
     "layer 1 (conv): key 'width': expected a rule name or a mapping"),
    ("{rule: floor}", "  - {kind: dw, width: floor}\n", "layer 1 (dw): key 'width': unknown key for a dw layer"),
])
def test_width_errors_name_the_key(width, layers, expected):
    message = error_of(layers, width)
    assert message.startswith("tiny.yaml:")
    assert expected in message


def test_framework_is_one_of_the_known(tmp_path):
    assert tiny("  - {kind: dw}\n", extra="framework: keras\n").framework == "keras"
    assert tiny("  - {kind: dw}\n").framework == ""
    assert "key 'framework': expected one of paper, torchvision, keras, tf-slim, got 'jax'" in \
        error_of("  - {kind: dw}\n", extra="framework: jax\n")
    assert {name: load_spec(name).framework for name in builtin_names()} == {
        **dict.fromkeys(["mobilenet_v1", "mobilenet_v1_conv", "mobilenet_v1_shallow"], "paper"),
        **dict.fromkeys(["mobilenet_v2", "mobilenet_v3_large", "mobilenet_v3_small", "mnasnet1_0",
                         "efficientnet_b0"], "torchvision"),
        **dict.fromkeys(["mobilenet_v1_keras", "mobilenet_v2_keras", "mobilenet_v3_large_keras",
                         "mobilenet_v3_small_keras"], "keras")}


def test_framework_specs_use_float_arithmetic_and_paper_specs_exact():
    for name in builtin_names():
        spec = load_spec(name)
        assert spec.width.arithmetic == ("exact" if spec.framework == "paper" else "float"), name


# --------------------------------------------------------------------------- explicit padding


PADDED = ("  - {kind: conv, kernel: 3, out: 8, stride: 2}\n"
          "  - {kind: dwsep, out: 16, stride: 2, padding: [0, 1]}\n"
          "  - {kind: dwsep, out: 16, stride: 1}\n")


@pytest.mark.parametrize("side,after_stem,after_pad", [(32, 16, 8), (33, 17, 8), (35, 18, 9), (5, 3, 1)])
def test_padding_sizes_a_side_as_a_valid_conv_on_the_padded_input(side, after_stem, after_pad):
    layers = expand(tiny(PADDED), 1, (side, side + 2))
    stem, dw, pw, dw2, _ = layers
    assert stem.out_shape[1] == after_stem == -(-side // 2)                    # SAME: ceil(side / 2)
    assert dw.out_shape[1] == after_pad == (after_stem + 1 - 3) // 2 + 1        # floor((s + 0 + 1 - 3) / 2) + 1
    assert dw.padding == (0, 1) and dw2.padding is None and stem.padding is None
    assert dw2.out_shape[1:] == dw.out_shape[1:]


def test_padding_that_leaves_nothing_is_refused_naming_the_row():
    spec = tiny(PADDED)
    with pytest.raises(SpecError) as info:
        expand(spec, 1, 2)
    assert str(info.value) == ("tiny.yaml:8: layer 2 (dwsep): key 'padding': a 1x1 input (of a 2x2 image) "
                               "padded by [0, 1] is smaller than the kernel's span of 3")
    assert len(expand(spec, 1, 2, widths_only=True)) == 5


@pytest.mark.parametrize("value,expected", [
    ("valid", "expected same or [before, after], got 'valid'"),
    ("[1]", "expected same or [before, after], got [1]"),
    ("[0, -1]", "expected an integer from 0 to 99, got -1"),
    ("[0, 1.5]", "expected an integer from 0 to 99, got 1.5"),
])
def test_padding_errors_name_the_key(value, expected):
    message = error_of(f"  - {{kind: dw, padding: {value}}}\n")
    assert message.startswith("tiny.yaml:7: layer 1 (dw): key 'padding': ")
    assert expected in message
    assert "unknown key for a pw layer" in error_of("  - {kind: pw, out: 8, padding: [0, 1]}\n")


def test_padded_search_agrees_with_table():
    spec = load_spec("mobilenet_v1_keras")
    resolutions = [(97, 97), (224, 224), (225, 225), (161, 130)]
    for block in blocks(spec, [Fraction("0.5"), Fraction("1.0")], resolutions):
        for res, madds, params in zip(block.resolutions, block.madds, block.params):
            report = count(expand(spec, block.alpha, res))
            assert (madds, params) == (report.madds, report.params), (block.alpha, res)


def test_the_pytorch_model_pads_as_the_spec_says():
    torch = pytest.importorskip("torch")
    from mnsize.nn import build_model

    model = build_model("mobilenet_v1_keras", "0.25", 225)
    assert isinstance(model.dwsep2.dw.pad, torch.nn.ZeroPad2d)
    assert model(torch.zeros(1, 3, 225, 225)).shape == (1, 1000)
    result = CliRunner().invoke(cli, ["verify", "--model", "mobilenet_v1_keras", "--alpha", "0.37", "--res",
                                      "225x161", "--device", "cpu"])
    assert result.exit_code == 0, result.output
    assert "every layer agrees with torch" in result.output


# --------------------------------------------------------------------------- the Keras families in every command


KERAS = ("mobilenet_v1_keras", "mobilenet_v2_keras", "mobilenet_v3_large_keras", "mobilenet_v3_small_keras")


def run(*args: str):
    return CliRunner().invoke(cli, [str(arg) for arg in args])


def test_models_lists_the_keras_families():
    result = run("models")
    assert result.exit_code == 0, result.output
    listed = {line.split()[0]: line.split()[1] for line in result.stdout.splitlines()}
    assert {name: listed.get(name) for name in KERAS} == dict.fromkeys(KERAS, "keras")


@pytest.mark.parametrize("model", KERAS)
def test_fit_and_grid_count_a_keras_family_as_table_does(model):
    import json

    result = run("fit", "--model", model, "--max-madds", "150M", "--format", "json")
    assert result.exit_code == 0, result.output
    best = json.loads(result.stdout)["best"]
    report = count(expand(load_spec(model), str(best["alpha"]), tuple(best["resolution"])))
    assert (best["model"], best["madds"], best["params"]) == (model, report.madds, report.params)
    assert best["madds"] <= 150_000_000
    result = run("grid", "--model", model, "--alphas", "0.35,1.0", "--resolutions", "97,225x161", "--format", "csv")
    assert result.exit_code == 0, result.output
    rows = [line.split(",") for line in result.stdout.strip().splitlines()]
    assert rows[0] == ["alpha", "97", "225x161"]
    for alpha, *cells in rows[1:]:
        assert [int(c) for c in cells] == [count(expand(load_spec(model), alpha, res)).madds
                                           for res in ((97, 97), (225, 161))]


def test_check_holds_a_keras_family_to_its_budget(tmp_path):
    params = count(expand(load_spec("mobilenet_v2_keras"), "0.28")).params
    budgets = tmp_path / "budgets.yaml"
    for limit, status in ((params, 0), (params - 1, 1)):
        budgets.write_text("budgets:\n  - name: keras-v2\n    model: mobilenet_v2_keras\n    alpha: 0.28\n"
                           f"    resolution: 224\n    max_params: {limit}\n")
        result = run("check", budgets)
        assert result.exit_code == status, result.output
