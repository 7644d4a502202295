"""mnsize import and verify --against: a real model's layers written as a spec,
and a spec compared with the model it describes."""

from __future__ import annotations

import dataclasses
from fractions import Fraction

import pytest
import yaml
from click.testing import CliRunner

from mnsize.against import Pair, compare, source_alpha
from mnsize.cli import cli
from mnsize.costs import count
from mnsize.errors import GraphError
from mnsize.expand import Config, expand
from mnsize.importer import imported, spec_rows, spec_text
from mnsize.models import builtin_names, load_spec
from mnsize.sources import is_callable_target
from mnsize.spec import parse_spec


def run(*args: str):
    return CliRunner().invoke(cli, list(args))


def round_trip(layers, name="model"):
    return parse_spec(spec_text(imported(layers, name, f"{name}.onnx")), f"{name}.yaml")


@pytest.mark.parametrize("name", builtin_names())
def test_every_builtin_reads_back_layer_for_layer(name):
    layers = expand(load_spec(name))
    again = expand(round_trip(layers, name))
    assert [(r.layer.kind, r.layer.out_shape, r.counts) for r in count(again).rows] == \
        [(r.layer.kind, r.layer.out_shape, r.counts) for r in count(layers).rows]


def test_blocks_are_recognised_and_repeats_merged():
    rows, classes = spec_rows(expand(load_spec("mobilenet_v1")), "v1.onnx")
    assert classes == 1000
    assert [row["kind"] for row in rows] == ["conv", "dwsep", "dwsep", "dwsep", "dwsep", "dwsep", "avgpool", "fc"]
    # (512, s2) then five (512, s1): one row, the stride on the first
    assert {"out": 512, "stride": 2, "repeat": 6}.items() <= rows[4].items()
    rows, _ = spec_rows(expand(load_spec("mobilenet_v2")), "v2.onnx")
    blocks = [row for row in rows if row["kind"] == "inverted_residual"]
    assert [(row["t"], row["out"], row.get("repeat", 1), row["stride"]) for row in blocks] == [
        (1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1), (6, 160, 3, 2), (6, 320, 1, 1)]
    rows, _ = spec_rows(expand(load_spec("mobilenet_v3_large")), "v3.onnx")
    # the table's seven squeeze-and-excite blocks: t 3 to 40 (three), t 6 to 112 (two), t 6 to 160 (three)
    assert [(row["t"], row["out"], row.get("repeat", 1)) for row in rows if row.get("se")] == [
        (3, 40, 3), (6, 112, 2), (6, 160, 3)]
    assert rows[0]["kind"] == "conv" and rows[-1] == {"kind": "fc", "act": "none"}


def test_the_imported_spec_reads_like_configs():
    text = spec_text(imported(expand(load_spec("mobilenet_v2")), "my net!", "my_net.onnx"))
    data = yaml.safe_load(text)
    assert data["name"] == "my_net"
    assert data["width"] == {"rule": "divisible", "divisor": 8}
    assert data["activation"] == "relu6" and data["classes"] == 1000
    assert "  - {kind: inverted_residual, " in text
    assert len(data["layers"]) == 12


def test_a_residual_around_more_than_one_block_is_refused():
    layers = list(expand(load_spec("mobilenet_v1")))
    layers[3] = dataclasses.replace(layers[3], residual=True)
    with pytest.raises(GraphError, match=r"v1.onnx: layer 'dwsep2.dw': a residual add around layers"):
        spec_rows(tuple(layers), "v1.onnx")


def test_a_block_whose_residual_disagrees_with_the_spec_rule_is_refused():
    layers = list(expand(load_spec("mobilenet_v2")))
    project = next(i for i, lay in enumerate(layers) if lay.residual)
    layers[project] = dataclasses.replace(layers[project], residual=False)
    with pytest.raises(GraphError, match="has no residual add"):
        spec_rows(tuple(layers), "v2.onnx")


def test_callable_targets_and_files_are_told_apart():
    assert is_callable_target("my_pkg.models:mobilenet")
    assert is_callable_target("torchvision.models:mobilenet_v2")
    assert not is_callable_target("model.onnx")
    assert not is_callable_target("C:\\models\\model.onnx")
    assert not is_callable_target("dir/a:b.onnx")


def test_source_alpha_prefers_the_option_then_the_callables_width():
    assert source_alpha(Fraction(1, 2), None) == Fraction(1, 2)
    assert source_alpha(None, None) == 1


def _spec_atoms(name, alpha="1.0"):
    from mnsize.graph import layer_atoms

    return layer_atoms(expand(load_spec(name), alpha))


def test_compare_names_the_first_layer_that_differs():
    spec = load_spec("mobilenet_v2")
    config = Config("mobilenet_v2", Fraction(1), (224, 224), 1000)
    atoms = list(_spec_atoms("mobilenet_v2"))
    assert compare(spec, config, tuple(atoms), "m.onnx", "test").match
    atoms[5] = dataclasses.replace(atoms[5], madds=atoms[5].madds + 10)
    result = compare(spec, config, tuple(atoms), "m.onnx", "test")
    assert not result.match and result.mismatches[0].position == 6
    assert result.mismatches[0].describe("m.onnx").startswith(f"layer {atoms[5].layer} ")
    assert "(+10, " in result.mismatches[0].describe("m.onnx")
    shorter = compare(spec, config, tuple(atoms[:-1]), "m.onnx", "test")
    assert shorter.mismatches[-1].model is None
    assert "has no counterpart in m.onnx" in shorter.mismatches[-1].describe("m.onnx")


def test_a_model_without_batchnorm_is_compared_with_the_spec_as_deployed():
    from mnsize.expand import deployed
    from mnsize.graph import layer_atoms

    spec = load_spec("mobilenet_v1")
    config = Config("mobilenet_v1", Fraction(1), (224, 224), 1000)
    folded = layer_atoms(deployed(expand(spec)))
    result = compare(spec, config, folded, "m.onnx", "test")
    assert result.folded and result.match
    assert not compare(spec, config, _spec_atoms("mobilenet_v1"), "m.onnx", "test").folded


def test_pair_with_a_missing_side_is_a_mismatch():
    (atom,) = _spec_atoms("mobilenet_v1")[:1]
    assert Pair(1, atom, None).differences == ("missing",)


# --------------------------------------------------------------------------- the command


def test_import_refuses_an_existing_out_without_force(tmp_path):
    out = tmp_path / "spec.yaml"
    out.write_text("keep me\n")
    result = run("import", str(tmp_path / "missing.onnx"), "--out", str(out))
    assert result.exit_code == 2
    assert "the file exists; give --force" in result.stderr
    assert out.read_text() == "keep me\n"


def test_import_of_a_missing_file_is_one_line_and_writes_nothing(tmp_path):
    out = tmp_path / "spec.yaml"
    result = run("import", str(tmp_path / "missing.onnx"), "--out", str(out))
    assert result.exit_code == 2
    assert len(result.stderr.strip().splitlines()) == 1
    assert "missing.onnx" in result.stderr
    assert not out.exists()


def test_kwargs_need_a_callable():
    result = run("verify", "--kwargs", "width_mult=0.5")
    assert result.exit_code == 2 and "--kwargs is for --against's callable" in result.stderr


# --------------------------------------------------------------------------- ONNX files in table, explain, check


def _small_onnx(path):
    """conv 3x3 s2 3->16, depthwise 3x3, pointwise 16->32, global pool, fc to 10."""
    from tests.onnx_graphs import Graph

    g = Graph((1, 3, 32, 32))
    y = g.op("Relu", g.conv(g.x, 3, 16, 3, stride=2, pads=[1, 1, 1, 1]))
    y = g.op("Relu", g.conv(y, 16, 16, 3, groups=16, pads=[1, 1, 1, 1]))
    y = g.op("Relu", g.conv(y, 16, 32, 1))
    y = g.op("Flatten", g.op("GlobalAveragePool", y))
    return g.save(path, g.op("Gemm", y, g.weight(10, 32), g.const([0.0] * 10), transB=1))


# 3*16*9*16*16 + 16*9*16*16 + 16*32*16*16 + 32*10 mult-adds; weights and the fc's bias
SMALL = {"madds": 110_592 + 36_864 + 131_072 + 320, "params": 432 + 144 + 512 + 330, "bn_params": 0}


def test_table_explain_and_check_count_an_onnx_file(tmp_path):
    import json

    model = _small_onnx(tmp_path / "small.onnx")
    data = json.loads(run("table", "--model", model, "-f", "json").stdout)
    assert data["totals"] == SMALL and data["model"] == "small" and data["resolution"] == [32, 32]
    assert [layer["kind"] for layer in data["layers"]] == ["conv", "dw", "pw", "avgpool", "fc"]
    assert run("explain", "--model", model).exit_code == 0
    budgets = tmp_path / "budgets.yaml"
    budgets.write_text(f"budgets:\n  - name: small\n    model: small.onnx\n    max_madds: {SMALL['madds']}\n"
                       f"    max_params: {SMALL['params'] - 1}\n")
    result = run("check", str(budgets))
    assert result.exit_code == 1  # params one over
    assert "small" in result.stdout


@pytest.mark.parametrize("option, value", [("--alpha", "0.5"), ("--rho", "0.5"), ("--classes", "5")])
def test_an_onnx_file_is_one_network(tmp_path, option, value):
    result = run("table", "--model", _small_onnx(tmp_path / "small.onnx"), option, value)
    assert result.exit_code == 2
    assert "an ONNX file" in result.stderr and len(result.stderr.strip().splitlines()) == 1


def test_a_budget_on_an_onnx_file_with_alpha_names_the_budget(tmp_path):
    _small_onnx(tmp_path / "small.onnx")
    budgets = tmp_path / "budgets.yaml"
    budgets.write_text("budgets:\n  - name: small\n    model: small.onnx\n    alpha: 0.5\n    max_madds: 1M\n")
    result = run("check", str(budgets))
    assert result.exit_code == 2
    assert "budget 'small'" in result.stderr and "--alpha does not apply" in result.stderr


# --------------------------------------------------------------------------- a PyTorch module by name

NETS = '''\
from mnsize.nn import build_model


def v2(width_mult=1.0, num_classes=1000):
    return build_model("mobilenet_v2", alpha=str(width_mult), classes=num_classes)
'''


def test_verify_against_a_callable_at_its_width(tmp_path, monkeypatch):
    pytest.importorskip("torch")
    (tmp_path / "nets_verify.py").write_text(NETS)
    monkeypatch.chdir(tmp_path)
    result = run("verify", "--model", "mobilenet_v2", "--against", "nets_verify:v2", "--kwargs", "width_mult=0.5",
                 "--res", "160")
    assert result.exit_code == 0, result.stderr
    assert "mobilenet_v2 · α 0.5 · 160×160" in result.stdout
    assert "FlopCounterMode FLOPs / 2 and numel() per module" in result.stdout
    result = run("verify", "--model", "mobilenet_v2", "--against", "nets_verify:v2", "--kwargs", "num_classes=10")
    assert result.exit_code == 1
    assert result.stderr.startswith("mnsize verify: mismatch: layer fc1 (the model's 'fc1.linear'): mult-adds")


def test_import_a_callable_then_count_the_spec(tmp_path, monkeypatch):
    import json

    pytest.importorskip("torch")
    (tmp_path / "nets_import.py").write_text(NETS)
    monkeypatch.chdir(tmp_path)
    result = run("import", "nets_import:v2", "--kwargs", "width_mult=0.75", "--out", "v2.yaml")
    assert result.exit_code == 0, result.stderr
    totals = json.loads(run("table", "--model", "v2.yaml", "-f", "json").stdout)["totals"]
    assert totals == json.loads(run("table", "--model", "mobilenet_v2", "--alpha", "0.75", "-f", "json").stdout)[
        "totals"]
    missing = run("import", "nets_import:nowhere", "--out", "other.yaml")
    assert missing.exit_code == 2 and "nets_import:nowhere" in missing.stderr
    assert not (tmp_path / "other.yaml").exists()
