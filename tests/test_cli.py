"""The table command end to end: formats, views, exit codes, one-line errors."""

from __future__ import annotations

import csv
import io
import json
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from mnsize.cli import cli

SCRIPT = Path(sys.executable).parent / "mnsize"


def run(*args: str):
    return CliRunner().invoke(cli, list(args))


def test_table_default_shows_every_layer_and_totals():
    result = run("table")
    assert result.exit_code == 0, result.stderr
    out = result.stdout
    assert "mobilenet_v1 · α 1.0 · 224×224 · 1000 classes" in out
    assert "dwsep13.pw" in out and "fc1" in out
    assert "568,740,352" in out and "4,210,088" in out
    assert "568.7M mult-adds" in out
    assert "+21,888 BatchNorm = 4,231,976 in PyTorch" in out


def test_table_json_schema_and_values():
    result = run("table", "--alpha", "0.5", "--res", "128", "--format", "json")
    data = json.loads(result.stdout)
    assert list(data) == ["schema", "model", "alpha", "resolution", "classes", "convention", "totals", "layers"]
    assert data["schema"] == "mnsize.table/1"
    assert data["model"] == "mobilenet_v1"
    assert data["alpha"] == 0.5
    assert data["resolution"] == [128, 128]
    assert data["totals"] == {"madds": 49_160_192, "params": 1_320_648, "bn_params": 10_944}
    first = data["layers"][0]
    assert list(first) == ["index", "name", "kind", "in", "out", "kernel", "stride", "madds", "params", "bn_params",
                           "activations"]
    assert first == {"index": 1, "name": "conv1", "kind": "conv", "in": [3, 128, 128], "out": [16, 64, 64],
                     "kernel": 3, "stride": 2, "madds": 1_769_472, "params": 432, "bn_params": 32,
                     "activations": 3 * 128 * 128 + 16 * 64 * 64}
    assert data["layers"][-2]["kernel"] is None  # global pooling
    assert sum(layer["madds"] for layer in data["layers"]) == data["totals"]["madds"]


def test_table_rho_and_non_square():
    rho = json.loads(run("table", "--rho", "0.571", "-f", "json").stdout)
    assert rho["resolution"] == [128, 128]
    assert rho["totals"]["madds"] == 186_400_768
    rect = json.loads(run("table", "--res", "320x240", "-f", "json").stdout)
    assert rect["resolution"] == [320, 240]
    assert rect["layers"][0]["out"] == [32, 160, 120]


def test_table_csv_rows():
    rows = list(csv.DictReader(io.StringIO(run("table", "-f", "csv", "--classes", "10").stdout)))
    assert len(rows) == 29
    assert rows[-1]["name"] == "fc1" and rows[-1]["madds"] == "10240" and rows[-1]["out_c"] == "10"
    assert sum(int(r["madds"]) for r in rows) == 567_716_352 + 10_240


def test_table_markdown():
    out = run("table", "-f", "markdown").stdout
    lines = [line for line in out.splitlines() if line.startswith("|")]
    assert len(lines) == 2 + 29 + 1  # header, rule, layers, totals
    assert lines[-1].startswith("|  | total |")


def test_by_kind_view():
    data = json.loads(run("table", "--by-kind", "-f", "json").stdout)
    kinds = {k["kind"]: k for k in data["by_kind"]}
    assert kinds["conv 1x1"]["madds_pct"] == pytest.approx(94.86, abs=0.005)
    assert sum(k["madds"] for k in data["by_kind"]) == data["totals"]["madds"]
    assert "conv 1x1" in run("table", "--by-kind").stdout


def test_standard_view():
    data = json.loads(run("table", "--standard", "-f", "json").stdout)["standard"]
    assert data["standard_madds"] == 4_867_293_184
    assert len(data["pairs"]) == 13
    assert data["pairs"][0]["ratio"] == pytest.approx(1 / 64 + 1 / 9)
    text = run("table", "--standard").stdout
    assert "1/N + 1/K²" in text and "8.56×" in text  # 4867.3M / 568.7M


def test_models_command():
    out = run("models").stdout
    assert "mobilenet_v1_shallow" in out and "Table 5" in out


BAD_ARGS = [
    (["--alpha", "0"], "--alpha"),
    (["--alpha", "-1"], "--alpha"),
    (["--alpha", "nan"], "--alpha"),
    (["--alpha", "inf"], "--alpha"),
    (["--alpha", "abc"], "--alpha"),
    (["--res", "0"], "--res"),
    (["--res", "abc"], "--res"),
    (["--res", "224x0"], "--res"),
    (["--rho", "0"], "--rho"),
    (["--res", "128", "--rho", "0.5"], "--res or --rho"),
    (["--model", "mobilenet_v9"], "unknown model 'mobilenet_v9'"),
    (["--model", "missing.yaml"], "missing.yaml: no such file"),
    (["--format", "xml"], "--format"),
    (["--classes", "0"], "--classes"),
    (["--by-kind", "--standard"], "--by-kind or --standard"),
    (["--alpha", "1/0"], "--alpha"),
    (["--res", "1000001"], "--res"),
]


@pytest.mark.parametrize("args,fragment", BAD_ARGS)
def test_bad_input_one_line_exit_2(args, fragment):
    result = run("table", *args)
    assert result.exit_code == 2
    assert result.stdout == ""
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("mnsize table: error: ")
    assert fragment in lines[0]


BAD_SPECS = {
    "malformed.yaml": "name: [unclosed\n",
    "list.yaml": "- just\n- a list\n",
    "kind.yaml": "name: x\nsource: y\ninput: {channels: 3, resolution: 32}\nwidth: floor\nclasses: 2\n"
                 "layers:\n  - {kind: magic}\n",
    "stride.yaml": "name: x\nsource: y\ninput: {channels: 3, resolution: 32}\nwidth: floor\nclasses: 2\n"
                   "layers:\n  - {kind: dw, stride: -2}\n",
    "channels.yaml": "name: x\nsource: y\ninput: {channels: 3, resolution: 32}\nwidth: floor\nclasses: 2\n"
                     "layers:\n  - {kind: pw, out: 7.5}\n",
    "tag.yaml": "name: !!python/object/apply:os.system ['touch pwned']\n",
}


@pytest.mark.parametrize("name", sorted(BAD_SPECS))
def test_bad_specs_through_a_real_process(tmp_path, name):
    path = tmp_path / name
    path.write_text(BAD_SPECS[name])
    proc = subprocess.run([str(SCRIPT), "table", "--model", str(path)], capture_output=True, text=True,
                          cwd=tmp_path, timeout=60)
    assert proc.returncode == 2
    assert proc.stdout == ""
    assert "Traceback" not in proc.stderr
    assert len(proc.stderr.splitlines()) == 1
    assert proc.stderr.startswith(f"mnsize table: error: {path}")
    assert sorted(p.name for p in tmp_path.iterdir()) == [name]  # nothing written, no tag executed


def test_python_dash_m_and_version():
    proc = subprocess.run([sys.executable, "-m", "mnsize", "table", "-f", "json"], capture_output=True, text=True,
                          timeout=60)
    assert proc.returncode == 0
    assert json.loads(proc.stdout)["totals"]["madds"] == 568_740_352
    version = subprocess.run([str(SCRIPT), "--version"], capture_output=True, text=True, timeout=60)
    assert version.stdout.startswith("mnsize, version ")


def test_counting_commands_never_import_torch():
    """table, fit, grid, plot and check run in one process; torch, onnx and numpy are never imported."""
    budgets = str(Path(__file__).resolve().parent.parent / "configs" / "budgets.yaml")
    code = ("import sys; from mnsize.cli import main\n"
            "for args in (['table', '--standard'], ['table', '--by-kind', '-f', 'json'],\n"
            f"             ['fit', '--max-madds', '150M'], ['grid'], ['plot'], ['check', {budgets!r}]):\n"
            "    try:\n        main(args)\n    except SystemExit as e:\n        assert e.code == 0, (args, e.code)\n"
            "assert 'torch' not in sys.modules, 'torch was imported'\n"
            "assert 'onnx' not in sys.modules and 'numpy' not in sys.modules, 'onnx or numpy was imported'\n")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr


def test_broken_pipe_is_not_a_failed_check():
    proc = subprocess.Popen([str(SCRIPT), "table", "--res", "4000", "-f", "csv"], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)
    proc.stdout.read(10)
    proc.stdout.close()
    assert proc.wait(timeout=60) in (0, 141)
    assert proc.stderr.read() == b""


def test_no_arguments_prints_help():
    result = run()
    assert result.exit_code == 0
    assert "Commands:" in result.stdout and "table" in result.stdout


@pytest.mark.parametrize("name", sorted(cli.commands))
def test_every_command_has_help_with_its_examples_kept_whole(name):
    result = CliRunner().invoke(cli, [name, "--help"])
    assert result.exit_code == 0
    assert f"Usage: mnsize {name}" in result.output
    assert "\\b" not in result.output  # click's no-rewrap marker, never shown
    for line in result.output.splitlines():  # an example stays on a line of its own
        assert line.count("mnsize ") <= 1 or line.startswith("Usage:"), line


def test_the_group_registers_every_command_module():
    from mnsize.cli import __path__ as package

    # a command named after a Python keyword lives in a module with a trailing underscore (import_)
    modules = {p.stem.rstrip("_") for p in Path(package[0]).glob("*.py") if p.stem != "__init__"} - {"base", "options"}
    assert modules == set(cli.commands)
