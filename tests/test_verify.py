"""mnsize verify: the symbolic counts against a real PyTorch model, layer by layer."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from mnsize import builtin_names, expand, load_spec
from mnsize.cli import cli
from mnsize.costs import COST_FORMULAS, Counts

torch = pytest.importorskip("torch", reason="verify needs torch: pip install 'mnsize[torch]'")

from mnsize.nn import build_layers, build_model  # noqa: E402
from mnsize.crosscheck import count_torch, torch_params, verify  # noqa: E402

SPECS = {name: load_spec(name) for name in builtin_names()}
alphas = st.decimals(min_value="0.10", max_value="1.40", places=2).map(str)
sides = st.integers(min_value=32, max_value=512)


@pytest.mark.parametrize("name", sorted(SPECS))
@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(alpha=alphas, height=sides, width=sides)
@example(alpha="1.0", height=224, width=224)
@example(alpha="0.37", height=33, width=33)
@example(alpha="1.4", height=512, width=32)
def test_symbolic_equals_torch_in_every_layer(name, alpha, height, width):
    result = verify(SPECS[name], alpha, (height, width))
    for check in result.layers:
        assert check.match, (check.row.layer.name, check.differences)
    assert result.symbolic == result.torch
    assert result.match


def test_published_totals_through_torch():
    result = verify(SPECS["mobilenet_v1"], "1.0", (224, 224))
    assert (result.torch.madds, result.torch.params, result.torch.bn_params) == (568_740_352, 4_210_088, 21_888)
    conv = verify(SPECS["mobilenet_v1_conv"], "1.0", (224, 224))
    assert (conv.torch.madds, conv.torch.params) == (4_867_293_184, 29_282_120)


@pytest.mark.parametrize("name", sorted(SPECS))
def test_batchnorm_elision_on_meta_changes_nothing(name):
    """The fast meta path passes BatchNorm through; with BatchNorm run, every figure is the same."""
    layers = expand(SPECS[name], "0.75", (97, 131))
    model = build_layers(layers, "meta").eval()
    fast = count_torch(model, layers, (3, 97, 131), "meta", fast_meta=True)
    full = count_torch(model, layers, (3, 97, 131), "meta", fast_meta=False)
    assert fast == full
    assert not any("forward" in vars(m) for m in model.modules())  # the pass-through is undone


def test_cpu_forward_agrees():
    result = verify(SPECS["mobilenet_v1"], "0.25", (64, 48), device="cpu")
    assert result.match


def test_model_is_trainable_and_named_after_layers():
    model = build_model("mobilenet_v1", alpha="0.25", resolution=64, classes=10)
    names = {name for name, _ in model.named_children()}
    assert {"conv1", "dwsep1", "dwsep13", "avgpool1", "fc1"} <= names
    assert isinstance(model.get_submodule("dwsep13.pw").conv, torch.nn.Conv2d)
    assert model.get_submodule("dwsep1.dw").conv.groups == 8
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    x, y = torch.randn(4, 3, 64, 64), torch.tensor([0, 1, 2, 3])
    before = model.fc1.linear.weight.detach().clone()
    loss = torch.nn.functional.cross_entropy(model(x), y)
    loss.backward()
    optimizer.step()
    assert model(x).shape == (4, 10)
    assert not torch.equal(before, model.fc1.linear.weight)


def test_torch_params_are_numel():
    layers = expand(SPECS["mobilenet_v1"])
    model = build_layers(layers, "meta")
    params = torch_params(model, layers)
    assert sum(params[""]) == sum(p.numel() for p in model.parameters()) == 4_231_976


# --------------------------------------------------------------------------- the command


def run(*args):
    return CliRunner().invoke(cli, ["verify", *args])


def test_verify_command_json():
    result = run("--alpha", "0.5", "--res", "160x128", "--format", "json")
    assert result.exit_code == 0, result.stderr
    data = json.loads(result.stdout)
    assert list(data) == ["schema", "model", "alpha", "resolution", "match", "symbolic", "torch", "layers"]
    assert data["schema"] == "mnsize.verify/1"
    assert data["match"] is True and data["resolution"] == [160, 128]
    assert data["symbolic"] == data["torch"]
    assert len(data["layers"]) == 29
    first = data["layers"][0]
    assert list(first) == ["name", "symbolic", "torch", "match"]
    assert first["torch"]["out"] == [16, 80, 64]


def test_verify_table_and_all():
    table = run("--model", "mobilenet_v1_shallow")
    assert table.exit_code == 0
    assert "every layer agrees with torch" in table.stdout
    everything = run("--all", "--format", "json")
    assert everything.exit_code == 0, everything.stderr
    data = json.loads(everything.stdout)
    assert data["match"] is True
    assert len(data["configs"]) == 16 * len(SPECS)
    assert {c["model"] for c in data["configs"]} == set(SPECS)
    one = run("--all", "--model", "mobilenet_v1", "--format", "json")
    assert len(json.loads(one.stdout)["configs"]) == 16


def test_a_wrong_formula_is_caught_and_named(monkeypatch):
    original = COST_FORMULAS["fc"]

    def off_by_one(layer):
        cost = original(layer)
        return Counts(cost.madds + 1, cost.params, cost.bn_params)

    monkeypatch.setitem(COST_FORMULAS, "fc", off_by_one)
    result = run("--alpha", "0.5")
    assert result.exit_code == 1
    assert "MISMATCH: madds" in result.stdout
    assert result.stderr.splitlines() == [
        "mnsize verify: mismatch: mobilenet_v1 · α 0.5 · 224×224 · 1000 classes: fc1 (madds)"]
    data = json.loads(run("--format", "json").stdout)
    assert data["match"] is False
    assert [layer["name"] for layer in data["layers"] if not layer["match"]] == ["fc1"]


@pytest.mark.parametrize("args,fragment", [
    (["--device", "gpu"], "--device"),
    (["--all", "--alpha", "0.5"], "--all checks the paper's grid"),
    (["--all", "--res", "128"], "--all checks the paper's grid"),
    (["--res", "128", "--rho", "0.5"], "--res or --rho"),
    (["--format", "csv"], "--format"),
    (["--model", "nope"], "unknown model 'nope'"),
    (["--alpha", "0"], "--alpha"),
])
def test_verify_bad_input(args, fragment):
    result = run(*args)
    assert result.exit_code == 2
    assert result.stdout == ""
    (line,) = result.stderr.splitlines()
    assert line.startswith("mnsize verify: error: ") and fragment in line


@pytest.mark.parametrize("args", [["verify"], ["bench", "--runs", "1"], ["profile", "--out", "p.yaml"],
                                  ["fit", "--max-madds", "150M", "--measure"]])
def test_without_torch_the_command_run_says_how_to_install(args, tmp_path):
    code = ("import sys; sys.modules['torch'] = None\n"
            f"from mnsize.cli import main\nmain({args!r})\n")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, cwd=tmp_path)
    assert proc.returncode == 2
    assert proc.stdout == ""
    (line,) = proc.stderr.splitlines()
    assert line.startswith(f"mnsize {args[0]}: error: ") and "PyTorch is not installed" in line, line
    assert 'pip install "mnsize[torch]"' in line and "verify" not in line.replace("mnsize verify:", "")
    assert list(tmp_path.iterdir()) == []


def test_verify_all_table_for_one_model():
    result = run("--all", "--model", "mobilenet_v1_shallow")
    assert result.exit_code == 0
    assert "16 of 16 configurations agree with torch in every layer" in result.stdout
    assert "ok (19 layers)" in result.stdout
