"""What the commands say about whose network they count: the table's footer
adds up under every convention, --convention keras names the network it
counts where that is not Keras's own, and `mnsize models` says what each
built-in follows."""

from __future__ import annotations

import json
import re

import pytest
from click.testing import CliRunner

from mnsize import count
from mnsize.cli import cli
from mnsize.conventions import CONVENTIONS
from mnsize.models import builtin_names, load_network, load_spec

FIGURE = re.compile(r"\d{1,3}(?:,\d{3})+|\d+")


def run(*args: str):
    return CliRunner().invoke(cli, list(args))


def footer(out: str) -> str:
    line, = (line for line in out.splitlines() if " params (" in line)
    return line


def params_figures(line: str) -> list[int]:
    """The whole numbers in the footer's params part, in order."""
    return [int(f.replace(",", "")) for f in FIGURE.findall(line.split(" params (", 1)[1])]


# --------------------------------------------------------------------------- the footer


@pytest.mark.parametrize("convention", list(CONVENTIONS))
@pytest.mark.parametrize("model", ["mobilenet_v1", "mobilenet_v2", "mobilenet_v2_keras", "mobilenet_v3_small"])
def test_the_footer_prints_what_the_tool_counts_and_adds_nothing_twice(model, convention):
    paper = count(load_network(model).layers)
    per_channel = CONVENTIONS[convention].bn_params_in_params
    result = run("table", "--model", model, "--convention", convention)
    assert result.exit_code == 0, result.stderr
    figures = params_figures(footer(result.stdout))
    if per_channel == 0:
        # the paper's params, BatchNorm's 2 per channel, and their sum: PyTorch's numel()
        assert figures == [paper.params, paper.bn_params, paper.params + paper.bn_params]
    else:
        tool = paper.params + per_channel * paper.bn_params // 2
        assert figures == [tool, per_channel * paper.bn_params // 2, per_channel]
        # a sum of the tool's figure and BatchNorm again would count BatchNorm twice
        assert tool + paper.bn_params not in figures and tool + per_channel * paper.bn_params // 2 not in figures


# published: torchvision's mobilenet_v2 has 3,504,872 parameters (numel); Keras's
# model.summary() gives MobileNet 4,253,864 and MobileNetV2 3,538,984 parameters
@pytest.mark.parametrize("model, convention, printed, view", [
    ("mobilenet_v2", "torch", 3_504_872, "layers"),
    ("mobilenet_v1", "keras", 4_253_864, "layers"),
    ("mobilenet_v2_keras", "keras", 3_538_984, "layers"),
    ("mobilenet_v1", "keras", 4_253_864, "--by-kind"),
])
def test_the_footer_shows_the_published_parameter_counts(model, convention, printed, view):
    args = ["table", "--model", model, "--convention", convention] + ([view] if view != "layers" else [])
    line = footer(run(*args).stdout)
    assert params_figures(line)[0] == printed
    assert "in PyTorch" not in line  # no sum added on top


def test_the_footer_names_the_tool_and_the_batchnorm_included():
    torch = footer(run("table", "--model", "mobilenet_v2", "--convention", "torch").stdout)
    assert "(3,504,872 as PyTorch's numel() counts them, BatchNorm's 34,112 included, 2 per channel)" in torch
    keras = footer(run("table", "--model", "mobilenet_v1", "--convention", "keras").stdout)
    assert "(4,253,864 as Keras counts them, BatchNorm's 43,776 included, 4 per channel)" in keras
    assert "4,275,752" not in keras  # 4,253,864 + 21,888: BatchNorm counted twice


def test_the_papers_footer_still_adds_batchnorm_to_give_pytorchs_count():
    line = footer(run("table", "--model", "mobilenet_v2").stdout)
    assert "(3,470,760; +34,112 BatchNorm = 3,504,872 in PyTorch)" in line


# --------------------------------------------------------------------------- --convention keras's note


def note_lines(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if ": note: " in line]


def test_keras_on_a_torchvision_spec_names_the_network_and_its_keras_twin():
    result = run("table", "--model", "mobilenet_v2", "--convention", "keras", "--format", "json")
    assert result.exit_code == 0
    assert json.loads(result.stdout)["totals"]["params"] == 3_538_984  # stdout is the JSON alone
    line, = result.stderr.splitlines()
    assert line.startswith("mnsize table: note: mobilenet_v2 is torchvision's network; ")
    assert "Keras's parameter accounting" in line and line.endswith("--model mobilenet_v2_keras")


def test_keras_on_the_papers_v1_names_its_keras_twin():
    line, = run("table", "--model", "mobilenet_v1", "--convention", "keras", "-f", "csv").stderr.splitlines()
    assert "mobilenet_v1 is the paper's network" in line and line.endswith("--model mobilenet_v1_keras")


def test_keras_names_a_twin_only_where_one_is_built_in():
    assert "efficientnet_b0_keras" not in builtin_names()
    line, = run("table", "--model", "efficientnet_b0", "--convention", "keras").stderr.splitlines()
    assert "efficientnet_b0 is torchvision's network" in line and "--model" not in line


@pytest.mark.parametrize("model", [name for name in builtin_names() if load_spec(name).framework == "keras"])
def test_no_note_for_kerass_own_networks(model):
    result = run("table", "--model", model, "--convention", "keras")
    assert result.exit_code == 0 and result.stderr == ""


@pytest.mark.parametrize("convention", [name for name in CONVENTIONS if name != "keras"])
def test_no_note_under_other_conventions(convention):
    for command in (["table"], ["grid"], ["fit", "--max-madds", "150M"]):
        result = run(*command, "--model", "mobilenet_v2", "--convention", convention)
        assert result.exit_code == 0 and result.stderr == "", (command, result.stderr)


SPEC_WITHOUT_FRAMEWORK = """\
name: tiny
source: a spec that names no framework
input: {channels: 3, resolution: 32}
width: floor
classes: 10
layers:
  - {kind: conv, kernel: 3, out: 16, stride: 2}
  - {kind: dwsep, out: 32}
"""


def test_keras_on_a_spec_without_a_framework_counts_it_as_its_file_defines_it(tmp_path):
    path = tmp_path / "tiny.yaml"
    path.write_text(SPEC_WITHOUT_FRAMEWORK, encoding="utf-8")
    result = run("table", "--model", str(path), "--convention", "keras")
    assert result.exit_code == 0
    line, = result.stderr.splitlines()
    assert line.startswith("mnsize table: note: tiny names no framework: ")
    assert "as its spec file defines it" in line and "--model" not in line


def test_keras_on_an_onnx_file_counts_its_network_as_it_is(tmp_path):
    pytest.importorskip("onnx")
    from .onnx_graphs import Graph

    g = Graph((1, 3, 16, 16))
    y = g.op("Relu", g.op("BatchNormalization", g.conv(g.x, 3, 8, 3, stride=2, pads=[1, 1, 1, 1]),
                          *(g.weight(8) for _ in range(4))))
    path = g.save(tmp_path / "small.onnx", y)
    result = run("table", "--model", str(path), "--convention", "keras")
    assert result.exit_code == 0, result.stderr
    line, = result.stderr.splitlines()
    assert line.startswith("mnsize table: note: --convention keras counts the network in ")
    assert "small.onnx as the file holds it" in line
    weights = 3 * 3 * 3 * 8
    assert params_figures(footer(result.stdout)) == [weights + 4 * 8, 4 * 8, 4]


def test_keras_notes_on_grid_and_fit_once_per_model():
    grid = run("grid", "--model", "mobilenet_v3_small", "--convention", "keras", "--format", "csv")
    assert grid.exit_code == 0
    line, = grid.stderr.splitlines()
    assert line.startswith("mnsize grid: note: mobilenet_v3_small is torchvision's network")
    assert line.endswith("--model mobilenet_v3_small_keras")
    fit = run("fit", "--model", "mobilenet_v1", "--model", "mobilenet_v2_keras", "--model", "mnasnet1_0",
              "--max-madds", "150M", "--convention", "keras", "--format", "json")
    assert fit.exit_code == 0
    json.loads(fit.stdout)
    notes = note_lines(fit.stderr)
    assert [n.split(": note: ")[1].split(" ")[0] for n in notes] == ["mobilenet_v1", "mnasnet1_0"]


def test_keras_notes_on_check_once_per_model_whatever_its_budgets(tmp_path):
    budgets = tmp_path / "budgets.yaml"
    budgets.write_text("""\
budgets:
  - name: a
    model: mobilenet_v2
    max_madds: 400M
  - name: b
    model: mobilenet_v2
    alpha: 0.5
    max_madds: 400M
  - name: c
    model: mobilenet_v2_keras
    max_madds: 400M
""", encoding="utf-8")
    result = run("check", str(budgets), "--convention", "keras", "--format", "json")
    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout)["passed"] is True
    line, = result.stderr.splitlines()
    assert line.startswith("mnsize check: note: mobilenet_v2 is torchvision's network")
    over = run("check", "--model", "mobilenet_v3_large", "--max-madds", "1M", "--convention", "keras")
    assert over.exit_code == 1  # the note leaves the verdict alone
    assert len(note_lines(over.stderr)) == 1 and "over budget" in over.stderr
    assert run("check", str(budgets), "--convention", "torch").stderr == ""


# --------------------------------------------------------------------------- mnsize models


def test_models_says_what_each_built_in_follows():
    result = run("models")
    assert result.exit_code == 0
    rows = {line.split()[0]: line.split()[1] for line in result.stdout.splitlines()}
    assert rows == {name: load_spec(name).framework for name in builtin_names()}
    assert {name for name, follows in rows.items() if follows == "keras"} == {
        "mobilenet_v1_keras", "mobilenet_v2_keras", "mobilenet_v3_large_keras", "mobilenet_v3_small_keras"}
    assert rows["mobilenet_v2"] == "torchvision" and rows["mobilenet_v1"] == "paper"
    for line in result.stdout.splitlines():  # the name, what it follows, then its title and source as before
        name, follows, rest = line.split(maxsplit=2)
        assert rest == f"{load_spec(name).title}: {load_spec(name).source}"
