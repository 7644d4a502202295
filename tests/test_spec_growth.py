"""The spec format's newer keys (groups, dilation, maxpool, SiLU, sigmoid and
GELU, squeeze-and-excite rules, the depth multiplier, stochastic depth) and
the two built-ins that need them, EfficientNet-B0 and MnasNet 1.0, against
torchvision's published figures and a PyTorch model built from the spec."""

from __future__ import annotations

import importlib
import math
import re
from fractions import Fraction
from pathlib import Path

import pytest
from click.testing import CliRunner

from mnsize import SpecError, count, expand, load_spec, parse_spec
from mnsize.cli import cli
from mnsize.conventions import CONVENTIONS
from mnsize.width import SqueezeRule, make_divisible

from .conftest import spec_text
from .test_conventions import CONFIGS, TOOLS

ROOT = Path(__file__).resolve().parent.parent


def numel(report) -> int:
    """What sum(p.numel()) of the PyTorch model gives: weights, biases and BatchNorm's 2 per channel."""
    return report.params + report.bn_params


def example() -> str:
    text = (ROOT / "docs" / "spec-format.md").read_text(encoding="utf-8")
    return next(b for b in re.findall(r"```yaml\n(.*?)```", text, re.DOTALL) if "name: dilated_family" in b)


def b1_text() -> str:
    """EfficientNet-B1 as its scaling gives it: B0's table at depth 1.1 and 240x240 (width 1.0)."""
    text = (ROOT / "configs" / "efficientnet_b0.yaml").read_text(encoding="utf-8")
    for old, new in (("name: efficientnet_b0", "name: efficientnet_b1"), ("depth: 1 ", "depth: 1.1"),
                     ("resolution: 224", "resolution: 240")):
        assert old in text
        text = text.replace(old, new)
    return text


# --------------------------------------------------------------------------- the built-ins against torchvision


def test_efficientnet_b0_published_counts():
    """torchvision's efficientnet_b0: 5,288,548 parameters; 0.39 GFLOPS (mult-adds, SE's convs included)."""
    report = count(expand(load_spec("efficientnet_b0")))
    assert report.madds == 385_814_752
    assert numel(report) == 5_288_548
    assert round(report.madds / 1e9, 2) == 0.39


def test_mnasnet1_0_published_counts():
    """torchvision's mnasnet1_0: 4,383,312 parameters; 0.314 GFLOPS (mult-adds in billions)."""
    report = count(expand(load_spec("mnasnet1_0")))
    assert numel(report) == 4_383_312
    assert round(report.madds / 1e9, 3) == 0.314
    assert report.madds == 314_415_872


def test_efficientnet_b0_blocks():
    layers = expand(load_spec("efficientnet_b0"))
    blocks = sorted({lay.block for lay in layers if lay.block.startswith("ir")}, key=lambda b: int(b[2:]))
    assert len(blocks) == 16
    by_name = {lay.name: lay for lay in layers}
    assert "ir1.expand" not in by_name  # expand ratio 1: no expansion conv
    for block in blocks:
        dw, se, project = (by_name[f"{block}.{part}"] for part in ("dw", "se", "project"))
        c_in = by_name.get(f"{block}.expand", dw).in_shape[0]
        assert se.squeeze == max(1, c_in // 4)
        assert (se.se_act, se.gate, dw.act, project.act) == ("silu", "sigmoid", "silu", "none")
        assert project.residual == (dw.stride == 1 and c_in == project.out_shape[0])
    assert [lay.out_shape[0] for lay in layers if lay.name.endswith(".project")] == \
        [16, 24, 24, 40, 40, 80, 80, 80, 112, 112, 112, 192, 192, 192, 192, 320]
    assert by_name["pw1"].out_shape == (1280, 7, 7) and by_name["pw1"].act == "silu"


def test_mnasnet1_0_layers():
    layers = expand(load_spec("mnasnet1_0"))
    assert [(lay.name, lay.out_shape[0], lay.act) for lay in layers[:3]] == [
        ("conv1", 32, "relu"), ("dw1", 32, "relu"), ("pw1", 16, "none")]
    assert [lay.out_shape[0] for lay in layers if lay.name.endswith(".project")] == \
        [24] * 3 + [40] * 3 + [80] * 3 + [96] * 2 + [192] * 4 + [320]
    assert not any(lay.kind == "se" for lay in layers)
    # the last 1x1 conv stays 1280 wide at every alpha; the rest follow _round_to_multiple_of(c x alpha, 8)
    small = {lay.name: lay for lay in expand(load_spec("mnasnet1_0"), "0.5")}
    assert small["pw2"].out_shape[0] == 1280 and small["conv1"].out_shape[0] == 16
    assert small["ir16.project"].out_shape[0] == 160


@pytest.mark.parametrize("name", ["efficientnet_b0", "mnasnet1_0"])
def test_verify_command_passes(name):
    pytest.importorskip("torch", reason="verify needs torch")
    result = CliRunner().invoke(cli, ["verify", "--model", name])
    assert result.exit_code == 0, result.output
    assert "every layer agrees with torch" in result.stdout


@pytest.mark.parametrize("name,madds,params", [("efficientnet_b0", 385_814_752, 5_288_548),
                                               ("mnasnet1_0", 314_415_872, 4_383_312)])
def test_torch_counts_the_published_figures(name, madds, params):
    pytest.importorskip("torch", reason="verify needs torch")
    from mnsize.crosscheck import verify

    result = verify(load_spec(name), "1.0", (224, 224))
    assert result.match, [c.row.layer.name for c in result.mismatches]
    assert (result.torch.madds, result.torch.params + result.torch.bn_params) == (madds, params)


def test_efficientnet_b1_by_depth_and_resolution():
    """ceil(n x 1.1) blocks per row; torchvision's efficientnet_b1: 7,794,184 parameters, 0.687 GFLOPS."""
    spec = parse_spec(b1_text(), "b1.yaml")
    assert spec.depth == Fraction(11, 10)
    rows = [row.repeat for row in spec.layers if row.kind == "inverted_residual"]
    assert rows == [math.ceil(n * Fraction(11, 10)) for n in (1, 2, 2, 3, 3, 4, 1)] == [2, 3, 3, 4, 4, 5, 2]
    layers = expand(spec)
    assert layers[0].in_shape == (3, 240, 240)
    assert len({lay.block for lay in layers if lay.block.startswith("ir")}) == 23
    # the first row's two blocks keep 120x120; the second row strides in its first block only
    strides = {lay.name: lay.stride for lay in layers if lay.kind == "dw"}
    assert [strides[f"ir{i}.dw"] for i in range(1, 6)] == [1, 1, 2, 1, 1]
    report = count(layers)
    assert numel(report) == 7_794_184
    assert round(report.madds / 1e9, 3) == 0.687


def test_depth_is_exact_and_leaves_other_rows():
    text = spec_text("  - {kind: conv, kernel: 3, out: 8, repeat: 3}\n"
                     "  - {kind: dwsep, out: 8, repeat: 10}\n"
                     "  - {kind: inverted_residual, t: 2, out: 8, repeat: 7}\n"
                     "  - {kind: avgpool}\n  - {kind: fc}\n")
    for depth, repeats in (("0.3", [3, 3, 3]), ("1", [3, 10, 7]), ("1.3", [3, 13, 10]), ("0.01", [3, 1, 1])):
        spec = parse_spec(text.replace("classes: 10\n", f"classes: 10\ndepth: {depth}\n"), "d.yaml")
        assert [row.repeat for row in spec.layers[:3]] == repeats
    # 0.07 x 100 is 7 exactly, where a float product is 7.000000000000001 and its ceil 8
    text = text.replace("repeat: 10}", "repeat: 100}").replace("classes: 10\n", "classes: 10\ndepth: 0.07\n")
    spec = parse_spec(text, "d.yaml")
    assert [row.repeat for row in spec.layers[:3]] == [3, 7, 1]


# --------------------------------------------------------------------------- squeeze-and-excite rules


@pytest.mark.parametrize("rule,c_in,expanded,squeeze", [
    (SqueezeRule(), 40, 120, make_divisible(Fraction(30), 8)),                       # V3: 32
    (SqueezeRule(), 16, 16, 8),                                                      # V3: make_divisible(4, 8)
    (SqueezeRule(of="input", divisor=1), 40, 240, 10),                               # EfficientNet: 40 // 4
    (SqueezeRule(of="input", divisor=1), 3, 18, 1),                                  # max(1, 3 // 4)
    (SqueezeRule(of="input", divisor=1, minimum=4), 3, 18, 4),
    (SqueezeRule(ratio=Fraction(1, 16), of="expanded", divisor=1), 24, 100, 6),      # floor(100 / 16)
    (SqueezeRule(ratio=Fraction(1, 3), of="expanded", divisor=8), 24, 100, 32),      # make_divisible(33, 8)
])
def test_squeeze_arithmetic(rule, c_in, expanded, squeeze):
    assert rule.squeeze(c_in, expanded) == squeeze
    width = c_in if rule.of == "input" else expanded
    assert squeeze == max(rule.minimum, make_divisible(Fraction(math.floor(rule.ratio * width)), rule.divisor))


def test_se_true_is_v3s_rule_unchanged():
    base = "  - {kind: conv, kernel: 3, out: 16}\n  - {kind: inverted_residual, expand: 72, out: 24, se: %s}\n"
    true = expand(parse_spec(spec_text(base % "true")))
    for same in ("{}", "{ratio: 0.25, of: expanded, divisor: 8, min: 1, act: relu, gate: hardsigmoid}"):
        assert expand(parse_spec(spec_text(base % same))) == true
    se = next(lay for lay in true if lay.kind == "se")
    assert (se.squeeze, se.act, se.se_act, se.gate) == (make_divisible(Fraction(72 // 4), 8), "relu", "relu",
                                                        "hardsigmoid")
    small = load_spec("mobilenet_v3_small")
    assert all(row.se == SqueezeRule() for row in small.layers if row.se is not None)


def test_spec_level_rule_and_row_overrides():
    header = ("name: tiny\nsource: test\ninput: {channels: 3, resolution: 32}\nwidth: {rule: floor}\nclasses: 10\n"
              "se: {of: input, divisor: 1, act: silu, gate: sigmoid}\n")
    layers = expand(parse_spec(spec_text("  - {kind: conv, kernel: 3, out: 20}\n"
                                         "  - {kind: inverted_residual, t: 6, out: 20, se: true}\n"
                                         "  - {kind: inverted_residual, t: 6, out: 20, se: {ratio: 0.5}}\n"
                                         "  - {kind: inverted_residual, t: 6, out: 20, se: {of: expanded}}\n"
                                         "  - {kind: inverted_residual, t: 6, out: 20}\n", header)))
    assert [(lay.squeeze, lay.se_act, lay.gate) for lay in layers if lay.kind == "se"] == [
        (5, "silu", "sigmoid"), (10, "silu", "sigmoid"), (30, "silu", "sigmoid")]


# --------------------------------------------------------------------------- the documented example


def test_documented_example_counts():
    layers = expand(parse_spec(example(), "spec-format.md"))
    by_name = {lay.name: lay for lay in layers}
    assert by_name["maxpool1"].in_shape == (32, 64, 64) and by_name["maxpool1"].out_shape == (32, 32, 32)
    rows = {row.layer.name: row for row in count(layers).rows}
    assert (rows["maxpool1"].madds, rows["maxpool1"].params) == (0, 0)
    assert rows["conv2"].params == 9 * 8 * 64 and rows["conv2"].madds == 4_718_592 == 9 * 8 * 64 * 32 * 32
    assert sorted({lay.block for lay in layers if lay.block.startswith("ir")}) == ["ir1", "ir2", "ir3", "ir4", "ir5"]
    for block in ("ir1", "ir2", "ir3"):
        assert (by_name[f"{block}.se"].squeeze, by_name[f"{block}.se"].gate) == (16, "sigmoid")
        assert by_name[f"{block}.project"].drop_path == 0.1 and by_name[f"{block}.project"].residual
        assert by_name[f"{block}.dw"].dilation == 1 and by_name[f"{block}.expand"].act == "gelu"
    for block in ("ir4", "ir5"):
        se = by_name[f"{block}.se"]
        assert (se.squeeze, se.se_act, se.gate) == (32, "silu", "hardsigmoid")
        assert by_name[f"{block}.dw"].dilation == 2 and by_name[f"{block}.dw"].out_shape == (256, 32, 32)
        assert by_name[f"{block}.project"].drop_path == 0
        # dilation costs what the undilated conv costs
        assert rows[f"{block}.dw"].counts == rows["ir1.dw"].counts


@pytest.mark.parametrize("alpha,resolution", [("1.0", (128, 128)), ("0.5", (97, 61)), ("1.25", (33, 200))])
def test_documented_example_verifies_against_torch(alpha, resolution):
    pytest.importorskip("torch", reason="verify needs torch")
    from mnsize.crosscheck import verify

    spec = parse_spec(example(), "spec-format.md")
    for device in ("meta", "cpu"):
        result = verify(spec, alpha, resolution, device=device)
        assert result.match, (device, [(c.row.layer.name, c.differences) for c in result.mismatches])


@pytest.mark.parametrize("tool", sorted(TOOLS))
def test_the_real_tools_count_the_newer_modules(tool):
    """Max pooling, GELU, SiLU, sigmoid and hard-sigmoid gates, grouped and dilated convs: each tool prints
    what its convention says (the built-ins are in tests/test_conventions.py)."""
    run, package = TOOLS[tool]
    try:
        importlib.import_module(package)
    except ImportError as exc:
        pytest.skip(f"{package} is not installed here ({exc}): pip install \"mnsize[peers]\"")
    from mnsize.nn import build_layers

    spec = parse_spec(example(), "spec-format.md")
    for alpha, resolution in CONFIGS:
        layers = expand(spec, alpha, resolution)
        report = count(layers, CONVENTIONS[tool])
        assert run(build_layers(layers).eval(), (3, *resolution)) == (report.madds, report.params), (alpha, resolution)


def test_ptflops_convention_counts_the_newer_modules():
    """What tests above confirm with the tool itself, as numbers: ptflops' 2 per max-pooling input element,
    GELU 2 and SiLU 1 per element, a sigmoid gate free."""
    layers = expand(parse_spec(example(), "spec-format.md"))
    ptflops = CONVENTIONS["ptflops"]
    by_name = {lay.name: lay for lay in layers}
    assert ptflops.breakdown(by_name["maxpool1"])["pooling"] == 2 * 32 * 64 * 64
    assert ptflops.breakdown(by_name["conv2"])["activations"] == 2 * 64 * 32 * 32
    se = ptflops.breakdown(by_name["ir1.se"])
    assert se["activations"] == 1 * 16 + 0 * 256 and se["pooling"] == 2 * 256 * 32 * 32


def test_stochastic_depth_in_the_model():
    torch = pytest.importorskip("torch", reason="the model needs torch")
    from mnsize.nn import Residual, build_layers

    layers = expand(parse_spec(example(), "spec-format.md"), "0.5", (32, 32))
    model = build_layers(layers)
    assert [type(model.get_submodule(b)).__name__ for b in ("ir1", "ir4")] == ["Residual", "Residual"]
    assert (model.get_submodule("ir1").drop_path, model.get_submodule("ir4").drop_path) == (0.1, 0.0)
    # it holds no module and no parameter: the same children and counts as without it
    assert [name for name, _ in model.get_submodule("ir1").named_children()] == ["expand", "dw", "se", "project"]
    torch.manual_seed(0)
    block = Residual(0.5)
    block.add_module("branch", torch.nn.Conv2d(4, 4, 1))
    x = torch.randn(256, 4, 3, 3)
    block.eval()
    assert torch.equal(block(x), x + block.branch(x))
    block.train()
    out = block(x)
    dropped = [torch.equal(out[i], x[i]) for i in range(256)]
    assert 64 < sum(dropped) < 192  # about half the images skip the branch
    kept = dropped.index(False)
    # the branch over the same batch: one image alone may take another kernel, off in the last bits
    assert torch.allclose(out[kept], x[kept] + 2 * block.branch(x)[kept], rtol=1e-5, atol=1e-6)


# --------------------------------------------------------------------------- refusals


def error_of(layers: str, header: str | None = None, alpha="1.0") -> str:
    with pytest.raises(SpecError) as info:
        expand(parse_spec(spec_text(layers, header), "bad.yaml"), alpha)
    message = str(info.value)
    assert "\n" not in message and message.startswith("bad.yaml:")
    return message


HEADER = "name: tiny\nsource: test\ninput: {channels: 3, resolution: 32}\nwidth: {rule: floor}\nclasses: 10\n"


@pytest.mark.parametrize("layers,expected", [
    ("  - {kind: conv, kernel: 3, out: 8, groups: 2}\n",
     "bad.yaml:7: layer 1 (conv): key 'groups': groups=2 does not divide the 3 input channels at alpha=1"),
    ("  - {kind: conv, kernel: 3, out: 8}\n  - {kind: conv, kernel: 3, out: 12, groups: 8}\n",
     "bad.yaml:8: layer 2 (conv): key 'groups': groups=8 does not divide the 12 output channels at alpha=1"),
    ("  - {kind: conv, kernel: 3, out: 8, groups: 0}\n",
     "bad.yaml:7: layer 1 (conv): key 'groups': expected an integer from 1 to 1,000,000, got 0"),
    ("  - {kind: dw, groups: 2}\n", "bad.yaml:7: layer 1 (dw): key 'groups': unknown key for a dw layer"),
    ("  - {kind: conv, kernel: 3, out: 8, dilation: 0}\n",
     "bad.yaml:7: layer 1 (conv): key 'dilation': expected an integer from 1 to 1,000,000, got 0"),
    ("  - {kind: dw, dilation: 1.5}\n",
     "bad.yaml:7: layer 1 (dw): key 'dilation': expected an integer from 1 to 1,000,000, got 1.5"),
    ("  - {kind: pw, out: 8, dilation: 2}\n", "bad.yaml:7: layer 1 (pw): key 'dilation': unknown key for a pw layer"),
    ("  - {kind: maxpool}\n", "bad.yaml:7: layer 1 (maxpool): key 'kernel': a maxpool layer needs 'kernel'"),
    ("  - {kind: maxpool, kernel: 2, stride: 2}\n",
     "bad.yaml:7: layer 1 (maxpool): key 'kernel': expected an odd kernel size, got 2"),
    ("  - {kind: maxpool, kernel: 3, out: 8}\n", "bad.yaml:7: layer 1 (maxpool): key 'out': unknown key"),
    ("  - {kind: dw, act: swish}\n", "bad.yaml:7: layer 1 (dw): key 'act': expected one of relu, relu6, hardswish, "
                                     "hardsigmoid, silu, sigmoid, gelu, none, got 'swish'"),
    ("  - {kind: inverted_residual, t: 6, out: 8, se: {squeeze: 4}}\n",
     "bad.yaml:7: layer 1 (inverted_residual): key 'se.squeeze': unknown key for squeeze-and-excite (expected "
     "ratio, of, divisor, min, act, gate)"),
    ("  - {kind: inverted_residual, t: 6, out: 8, se: {ratio: 0}}\n",
     "bad.yaml:7: layer 1 (inverted_residual): key 'se.ratio': expected a number > 0 and <= 1, got 0"),
    ("  - {kind: inverted_residual, t: 6, out: 8, se: {ratio: 1.5}}\n",
     "bad.yaml:7: layer 1 (inverted_residual): key 'se.ratio': expected a number > 0 and <= 1, got 1.5"),
    ("  - {kind: inverted_residual, t: 6, out: 8, se: {of: output}}\n",
     "bad.yaml:7: layer 1 (inverted_residual): key 'se.of': expected one of input, expanded, got 'output'"),
    ("  - {kind: inverted_residual, t: 6, out: 8, se: {divisor: 0}}\n",
     "bad.yaml:7: layer 1 (inverted_residual): key 'se.divisor': expected an integer from 1 to 1,024, got 0"),
    ("  - {kind: inverted_residual, t: 6, out: 8, se: {min: -1}}\n",
     "bad.yaml:7: layer 1 (inverted_residual): key 'se.min': expected an integer from 1 to 1,000,000, got -1"),
    ("  - {kind: inverted_residual, t: 6, out: 8, se: {gate: swish}}\n",
     "bad.yaml:7: layer 1 (inverted_residual): key 'se.gate': expected one of relu"),
    ("  - {kind: inverted_residual, t: 6, out: 8, se: {act: 1}}\n",
     "bad.yaml:7: layer 1 (inverted_residual): key 'se.act': expected one of relu"),
    ("  - {kind: inverted_residual, t: 6, out: 8, se: [0.25]}\n",
     "bad.yaml:7: layer 1 (inverted_residual): key 'se': expected true, false or a mapping such as"),
    ("  - {kind: inverted_residual, t: 6, out: 8, drop_path: 1}\n",
     "bad.yaml:7: layer 1 (inverted_residual): key 'drop_path': expected a probability in [0, 1), got 1"),
    ("  - {kind: inverted_residual, t: 6, out: 8, drop_path: -0.1}\n",
     "bad.yaml:7: layer 1 (inverted_residual): key 'drop_path': expected a probability in [0, 1), got -0.1"),
    ("  - {kind: inverted_residual, t: 6, out: 8, drop_path: yes}\n",
     "bad.yaml:7: layer 1 (inverted_residual): key 'drop_path': expected a probability in [0, 1), got 'yes'"),
    ("  - {kind: dwsep, out: 8, drop_path: 0.1}\n", "bad.yaml:7: layer 1 (dwsep): key 'drop_path': unknown key"),
])
def test_refusals_of_the_newer_keys(layers, expected):
    assert error_of(layers).startswith(expected)


@pytest.mark.parametrize("top,expected", [
    ("depth: 0\n", "bad.yaml:6: key 'depth': expected a number > 0 and <= 1000, got 0"),
    ("depth: -1\n", "bad.yaml:6: key 'depth': expected a number > 0 and <= 1000, got -1"),
    ("depth: deep\n", "bad.yaml:6: key 'depth': expected a positive number, got 'deep'"),
    ("depth: .inf\n", "bad.yaml:6: key 'depth': expected a positive number"),
    ("depth: 1000\n", "bad.yaml:6: key 'depth': the table repeats to 50,001 rows; a spec may have at most 20,000"),
    ("se: true\n", "bad.yaml:6: key 'se': expected a mapping such as {ratio: 0.25, of: input}, got True"),
    ("se: {ratio: 0.25, over: input}\n",
     "bad.yaml:6: key 'se.over': unknown key for squeeze-and-excite (expected ratio, of, divisor, min, act, gate)"),
    ("activation: mish\n", "bad.yaml:6: key 'activation': expected one of relu, relu6, hardswish, hardsigmoid, "
                           "silu, sigmoid, gelu, none, got 'mish'"),
])
def test_refusals_of_the_top_level_keys(top, expected):
    layers = "  - {kind: conv, kernel: 3, out: 8}\n  - {kind: dwsep, out: 8, repeat: 50}\n"
    assert error_of(layers, HEADER + top).startswith(expected)


def test_groups_are_checked_at_the_alpha_counted():
    layers = "  - {kind: conv, kernel: 3, out: 16}\n  - {kind: conv, kernel: 3, out: 32, groups: 4}\n"
    assert expand(parse_spec(spec_text(layers)), "0.5")[1].groups == 4   # 8 -> 16 channels: 4 divides both
    assert error_of(layers, alpha="0.3") == (                           # floor: 4 -> 9 channels
        "bad.yaml:8: layer 2 (conv): key 'groups': groups=4 does not divide the 9 output channels at alpha=0.3")


def test_the_search_counts_the_newer_keys_as_expand_does():
    from mnsize.sweep import evaluate

    spec = parse_spec(example(), "spec-format.md")
    for convention in (None, *CONVENTIONS.values()):
        for c in evaluate(spec, [Fraction(1, 4), Fraction(3, 4), Fraction(1)], [(64, 96), (224, 224), (33, 17)],
                          convention=convention):
            report = count(expand(spec, c.alpha, c.resolution), convention)
            assert (c.madds, c.params) == (report.madds, report.params), (convention, c.alpha, c.resolution)
