"""--convention X reproduces tool X's two numbers exactly: the real tools run on
the model mnsize builds, for every built-in spec and a sample of alpha and
non-square resolutions. A tool that is not installed skips with the reason
(pip install "mnsize[peers]" brings the verified versions)."""

from __future__ import annotations

import contextlib
import importlib
import io
import json
import warnings
from fractions import Fraction

import pytest
from click.testing import CliRunner

from mnsize import builtin_names, count, expand, load_spec
from mnsize.cli import cli
from mnsize.conventions import CONVENTIONS, explain
from mnsize.sweep import evaluate

SPECS = {name: load_spec(name) for name in builtin_names()}
CONFIGS = [("1.0", (224, 224)), ("0.35", (161, 97)), ("0.75", (96, 130))]


def _ptflops(model, shape):
    from ptflops import get_model_complexity_info

    with contextlib.redirect_stdout(io.StringIO()):
        return get_model_complexity_info(model, shape, as_strings=False, print_per_layer_stat=False)


def _thop(model, shape):
    import torch
    from thop import profile

    with contextlib.redirect_stdout(io.StringIO()):
        macs, params = profile(model, inputs=(torch.randn(1, *shape),), verbose=False)
    return int(macs), int(params)


def _fvcore(model, shape):
    import torch
    from fvcore.nn import FlopCountAnalysis, parameter_count

    analysis = FlopCountAnalysis(model, torch.randn(1, *shape))
    analysis.unsupported_ops_warnings(False)
    analysis.uncalled_modules_warnings(False)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return analysis.total(), parameter_count(model)[""]


def _torchinfo(model, shape):
    from torchinfo import summary

    stats = summary(model, input_size=(1, *shape), verbose=0)
    return stats.total_mult_adds, stats.total_params


def _torch(model, shape):
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    counter = FlopCounterMode(display=False)
    with torch.inference_mode(), counter:
        model(torch.zeros(1, *shape))
    return counter.get_total_flops() // 2, sum(p.numel() for p in model.parameters())


TOOLS = {"ptflops": (_ptflops, "ptflops"), "thop": (_thop, "thop"), "fvcore": (_fvcore, "fvcore"),
         "torchinfo": (_torchinfo, "torchinfo"), "torch": (_torch, "torch")}


@pytest.mark.parametrize("tool", sorted(TOOLS))
@pytest.mark.parametrize("name", sorted(SPECS))
def test_the_real_tool_prints_what_mnsize_says(tool, name):
    run, package = TOOLS[tool]
    try:
        importlib.import_module(package)
    except ImportError as exc:
        pytest.skip(f"{package} is not installed here ({exc}): pip install \"mnsize[peers]\"")
    from mnsize.nn import build_layers

    for alpha, resolution in CONFIGS:
        layers = expand(SPECS[name], alpha, resolution)
        model = build_layers(layers).eval()  # a fresh model per run: some tools leave hooks or buffers behind
        report = count(layers, CONVENTIONS[tool])
        assert run(model, (3, *resolution)) == (report.madds, report.params), (tool, name, alpha, resolution)


# Keras' summaries of its own MobileNets (params + 4 per BatchNorm channel); ../shared/FIGURES.md
KERAS = {"mobilenet_v1": 4_253_864, "mobilenet_v2": 3_538_984, "mobilenet_v3_large": 5_507_432,
         "mobilenet_v3_small": 2_554_968}


@pytest.mark.parametrize("name", sorted(KERAS))
def test_keras_parameter_counts(name):
    assert count(expand(SPECS[name]), CONVENTIONS["keras"]).params == KERAS[name]


def test_the_published_v1_table_of_disagreement():
    """../shared/FIGURES.md: every counter on 1.0-MobileNet-224 (conv-BN-ReLU blocks)."""
    layers = expand(SPECS["mobilenet_v1"])
    figures = {e.convention.name: (e.printed, e.params) for e in explain(layers)}
    assert figures["torch"] == (1_137_480_704, 4_231_976)
    assert figures["ptflops"] == (589_012_456, 4_231_976)
    assert figures["thop"] == (588_962_304, 4_231_976)
    assert figures["fvcore"] == (578_875_904, 4_231_976)
    assert figures["torchinfo"] == (568_763_240, 4_231_976)
    assert figures["paper"] == (568_740_352, 4_210_088)


@pytest.mark.parametrize("convention", sorted(CONVENTIONS))
def test_grid_search_counts_by_the_convention(convention):
    conv = CONVENTIONS[convention]
    for name in ("mobilenet_v1", "mobilenet_v3_small"):
        spec = SPECS[name]
        for c in evaluate(spec, [Fraction(1, 4), Fraction(1)], [(64, 96), (224, 224)], convention=conv):
            layers = expand(spec, c.alpha, c.resolution)
            report = count(layers, conv)
            assert (c.madds, c.params) == (report.madds, report.params)
            assert c.size_bytes == evaluate(spec, [c.alpha], [c.resolution])[0].size_bytes  # storage is storage


def test_explain_breakdown_adds_up():
    for e in explain(expand(SPECS["mobilenet_v3_large"], "0.75", (200, 160))):
        assert e.paper_madds + sum(e.breakdown.values()) == e.madds


def run(*args):
    return CliRunner().invoke(cli, list(args))


def test_explain_command():
    data = json.loads(run("explain", "--format", "json").stdout)
    assert [c["name"] for c in data["conventions"]] == list(CONVENTIONS)
    ptflops = next(c for c in data["conventions"] if c["name"] == "ptflops")
    assert ptflops["madds"] == 589_012_456 and ptflops["madds_vs_paper"] == 20_272_104
    assert ptflops["breakdown"]["BatchNorm"] == 2 * 5_042_688
    text = run("explain").stdout
    assert "+20.27M: BatchNorm +10.09M, activations +10.09M, pooling +100,352, biases +1,000" in text
    assert "1,137,480,704 FLOPs" in text and "4,253,864 params" in text


def test_convention_flag_on_every_counting_command(tmp_path):
    table = json.loads(run("table", "--convention", "thop", "-f", "json").stdout)
    assert table["convention"] == "thop" and table["totals"]["madds"] == 588_962_304
    assert table["totals"]["params"] == 4_231_976
    grid = json.loads(run("grid", "--convention", "fvcore", "-f", "json").stdout)
    assert next(c for c in grid["cells"] if c["alpha"] == 1.0 and c["resolution"] == [224, 224])["value"] == \
        578_875_904
    fit = json.loads(run("fit", "--max-madds", "570M", "--alphas", "1.0", "--resolutions", "224", "--convention",
                         "ptflops", "-f", "json").stdout)
    assert fit["best"] is None  # 589.0M as ptflops counts it
    budgets = tmp_path / "b.yaml"
    budgets.write_text("budgets:\n  - name: v1\n    model: mobilenet_v1\n    max_madds: 580M\n")
    assert run("check", str(budgets)).exit_code == 0
    assert run("check", str(budgets), "--convention", "ptflops").exit_code == 1


@pytest.mark.parametrize("args,fragment", [
    (["table", "--convention", "flopth"], "--convention"),
    (["table", "--standard", "--convention", "thop"], "--standard compares the paper's counts"),
    (["explain", "--alpha", "0"], "--alpha"),
    (["explain", "--format", "csv"], "--format"),
])
def test_bad_conventions(args, fragment):
    result = run(*args)
    assert result.exit_code == 2
    (line,) = result.stderr.splitlines()
    assert "error:" in line and fragment in line
