"""mnsize export: every built-in spec written as an ONNX file that is the
network itself (read back by mnsize's own ONNX counter, its totals are the
deployed spec's, exactly), checked by onnx.checker and run by onnxruntime;
and the refusals, each one line with nothing written."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import onnx
import pytest
from click.testing import CliRunner

from mnsize.cli import cli
from mnsize.costs import count
from mnsize.expand import deployed, expand
from mnsize.models import builtin_names, load_spec

ort = pytest.importorskip("onnxruntime")

#: a square input and an odd, non-square one, at two widths
CONFIGS = [("0.5", (160, 160)), ("0.75", (131, 97))]

#: a small network with what the built-ins lack: max pooling, dilation, an
#: explicit one-sided padding, GELU
TINY = """\
name: tiny
source: a test network
input: {channels: 3, resolution: 33}
width: floor
classes: 10
activation: gelu
layers:
  - {kind: conv, kernel: 3, out: 16, stride: 2}
  - {kind: maxpool, kernel: 3, stride: 2}
  - {kind: dw, kernel: 3, dilation: 2}
  - {kind: dw, kernel: 3, stride: 2, padding: [0, 1]}
  - {kind: inverted_residual, t: 4, out: 16, se: true}
  - {kind: avgpool}
  - {kind: fc}
"""


def run(*args: str):
    return CliRunner().invoke(cli, list(args))


def export(out: Path, *args: str):
    return run("export", "--out", str(out), *args)


def totals(model: str) -> tuple[int, int]:
    result = run("table", "--model", model, "--format", "json")
    assert result.exit_code == 0, result.stderr
    doc = json.loads(result.stdout)["totals"]
    return doc["madds"], doc["params"]


def expected(spec, alpha: str, resolution) -> tuple[int, int]:
    report = count(deployed(expand(spec, alpha, resolution)))
    return report.madds, report.params


def run_onnx(path: Path, resolution, seed: int = 0) -> np.ndarray:
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    x = np.random.default_rng(seed).standard_normal((1, 3, *resolution), dtype=np.float32)
    return session.run(["logits"], {"input": x})[0]


@pytest.mark.parametrize("alpha, resolution", CONFIGS, ids=["0.5-160", "0.75-131x97"])
@pytest.mark.parametrize("name", builtin_names())
def test_every_builtin_exports_as_the_network_it_counts(name, alpha, resolution, tmp_path):
    out = tmp_path / f"{name}.onnx"
    height, width = resolution
    result = export(out, "--model", name, "--alpha", alpha, "--res", f"{height}x{width}")
    assert result.exit_code == 0, result.stderr
    assert result.stdout == ""
    assert totals(str(out)) == expected(load_spec(name), alpha, resolution)
    onnx.checker.check_model(str(out), full_check=True)
    model = onnx.load(str(out))
    assert [(o.domain, o.version) for o in model.opset_import] == [("", 17)]
    assert model.producer_name == "mnsize"
    assert not any(node.op_type in ("BatchNormalization", "Dropout") for node in model.graph.node)
    logits = run_onnx(out, resolution)
    assert logits.shape == (1, load_spec(name).classes)
    assert np.isfinite(logits).all()


def test_max_pooling_dilation_padding_and_gelu_at_opset_20(tmp_path):
    spec = tmp_path / "tiny.yaml"
    spec.write_text(TINY, encoding="utf-8")
    out = tmp_path / "tiny.onnx"
    result = export(out, "--model", str(spec), "--res", "33x29", "--opset", "20")
    assert result.exit_code == 0, result.stderr
    assert totals(str(out)) == expected(load_spec(str(spec)), "1", (33, 29))
    ops = {node.op_type for node in onnx.load(str(out)).graph.node}
    assert {"MaxPool", "Gelu", "Add", "Mul", "GlobalAveragePool", "Gemm"} <= ops
    assert run_onnx(out, (33, 29)).shape == (1, 10)


def test_gelu_before_opset_20_is_refused(tmp_path):
    spec = tmp_path / "tiny.yaml"
    spec.write_text(TINY, encoding="utf-8")
    out = tmp_path / "tiny.onnx"
    result = export(out, "--model", str(spec))
    assert result.exit_code == 2
    assert result.stderr.count("\n") == 1 and "GELU" in result.stderr and "--opset 20" in result.stderr
    assert not out.exists()


def test_the_opset_is_recorded_and_hardswish_is_written_out_before_14(tmp_path):
    out = tmp_path / "v3.onnx"
    result = export(out, "--model", "mobilenet_v3_small", "--res", "96", "--opset", "13")
    assert result.exit_code == 0, result.stderr
    assert "opset 13" in result.stderr and result.stderr.count("\n") == 1
    model = onnx.load(str(out))
    assert [o.version for o in model.opset_import] == [13]
    assert "HardSwish" not in {node.op_type for node in model.graph.node}
    assert totals(str(out)) == expected(load_spec("mobilenet_v3_small"), "1", (96, 96))
    assert run_onnx(out, (96, 96)).shape == (1, 1000)


def test_the_seed_makes_the_weights(tmp_path):
    a, b, c = (tmp_path / f"{n}.onnx" for n in "abc")
    for path, seed in ((a, "0"), (b, "0"), (c, "1")):
        assert export(path, "--alpha", "0.25", "--res", "64", "--seed", seed).exit_code == 0
    assert a.read_bytes() == b.read_bytes() != c.read_bytes()
    assert not np.array_equal(run_onnx(a, (64, 64)), run_onnx(c, (64, 64)))


def test_an_existing_file_is_kept_without_force(tmp_path):
    out = tmp_path / "m.onnx"
    out.write_bytes(b"keep me")
    result = export(out, "--alpha", "0.25", "--res", "64")
    assert result.exit_code == 2
    assert result.stderr == f"mnsize export: error: {out}: the file exists; give --force to replace it\n"
    assert out.read_bytes() == b"keep me"
    assert export(out, "--alpha", "0.25", "--res", "64", "--force").exit_code == 0
    onnx.checker.check_model(str(out))


@pytest.mark.parametrize("args, fragment", [
    (("--opset", "10"), "opset must be a whole number from 11"),
    (("--opset", "99"), "opset must be a whole number from 11"),
    (("--opset", "x"), "expected a whole number"),
    (("--model", "no_such_net"), "unknown model 'no_such_net'"),
    (("--format", "tflite"), "tflite"),
    (("--seed", "-1"), "expected a whole number"),
])
def test_bad_input_is_one_line_and_nothing_written(args, fragment, tmp_path):
    out = tmp_path / "m.onnx"
    result = export(out, "--res", "64", *args)
    assert result.exit_code == 2
    assert result.stderr.count("\n") == 1 and fragment in result.stderr, result.stderr
    assert list(tmp_path.iterdir()) == []


def test_the_spec_read_is_never_overwritten(tmp_path):
    spec = tmp_path / "tiny.yaml"
    spec.write_text(TINY, encoding="utf-8")
    result = export(spec, "--model", str(spec), "--force")
    assert result.exit_code == 2 and "an input of this run" in result.stderr
    assert spec.read_text(encoding="utf-8") == TINY


def test_an_onnx_model_is_refused(tmp_path):
    result = export(tmp_path / "m.onnx", "--model", "other.onnx")
    assert result.exit_code == 2 and "already an ONNX file" in result.stderr


def test_without_onnx_the_install_hint(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "onnx", None)  # import onnx raises ImportError
    out = tmp_path / "m.onnx"
    result = export(out, "--res", "64")
    assert result.exit_code == 2
    assert "pip install 'mnsize[onnx]'" in result.stderr and result.stderr.count("\n") == 1
    assert not out.exists()


def test_export_never_imports_torch(tmp_path):
    code = ("import sys; from mnsize.cli import main\n"
            f"try:\n    main(['export', '--res', '64', '--out', {str(tmp_path / 'm.onnx')!r}])\n"
            "except SystemExit as e:\n    assert e.code == 0, e.code\n"
            "assert 'torch' not in sys.modules, 'torch was imported'\n")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr


@pytest.mark.parametrize("model, resolution, opset", [
    ("efficientnet_b0", (67, 45), "17"), ("mobilenet_v3_small", (67, 45), "17"),
    ("mobilenet_v3_small", (67, 45), "13"), ("mobilenet_v1_keras", (67, 45), "17"), ("mobilenet_v2", (64, 64), "11"),
    ("tiny", (33, 29), "20")])
def test_the_file_computes_what_the_pytorch_model_computes(model, resolution, opset, tmp_path):
    """The file's weights loaded into mnsize.nn's model of the same deployed
    layers: both give the same logits (padding, activations, SE, residuals)."""
    torch = pytest.importorskip("torch")
    from mnsize.nn import build_layers

    if model == "tiny":
        (tmp_path / "tiny.yaml").write_text(TINY, encoding="utf-8")
        model = str(tmp_path / "tiny.yaml")
    out = tmp_path / "m.onnx"
    height, width = resolution
    assert export(out, "--model", model, "--res", f"{height}x{width}", "--opset", opset).exit_code == 0
    layers = deployed(expand(load_spec(model), "1", resolution))
    # mnsize.nn's parameter names: a conv's are under .conv, an fc's under
    # .linear; squeeze-and-excite's fc1 and fc2 are named as in the file
    owner = {lay.name: lay.name + {"fc": ".linear"}.get(lay.kind, ".conv") for lay in layers if lay.kind != "se"}
    weights = {}
    for tensor in onnx.load(str(out)).graph.initializer:
        layer, _, leaf = tensor.name.rpartition(".")
        if leaf in ("weight", "bias"):
            key = f"{owner[layer]}.{leaf}" if layer in owner else tensor.name
            weights[key] = torch.from_numpy(onnx.numpy_helper.to_array(tensor).copy())
    net = build_layers(layers).eval()
    net.load_state_dict(weights, strict=True)
    x = np.random.default_rng(0).standard_normal((1, 3, *resolution), dtype=np.float32)
    with torch.no_grad():
        expected_logits = net(torch.from_numpy(x)).numpy()
    session = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"])
    logits = session.run(["logits"], {"input": x})[0]
    assert logits.shape == expected_logits.shape
    assert np.allclose(logits, expected_logits, rtol=1e-3, atol=1e-4 * np.abs(expected_logits).max())
