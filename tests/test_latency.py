"""Latency: the predictor's arithmetic, profile validation, and bench/profile
end to end on tiny configurations (no test asserts a wall-clock figure)."""

from __future__ import annotations

import json
from fractions import Fraction

import pytest
import yaml
from click.testing import CliRunner

from mnsize import count, expand, load_spec
from mnsize.cli import cli
from mnsize.expand import deployed
from mnsize.latency import (CALL_FEATURES, FEATURES, PROFILE_FORMAT, SPILL_FEATURE, layer_features, load_profile,
                            model_features)
from mnsize.metrics import Limits
from mnsize.search import fit
from mnsize.sweep import evaluate

MS_PER = {"compute_madds": 2e-8, "compute_bytes": 1e-7, "weight_bytes": 2e-7, "depthwise_bytes": 3e-7,
          "depthwise_unaligned_bytes": 6e-7, "other_bytes": 5e-8, "elementwise": 4e-7, "calls": 0.004,
          "depthwise_calls": 0.012}
SYNTHETIC = {"format": PROFILE_FORMAT, "written_by": "mnsize profile",
             "device": {"cpu": "test", "threads": 1, "torch": "none", "date": "2026-11-21"},
             "model": {"ms_per": MS_PER, "offset_ms": 0.5, "lanes": 16}}


#: a compiled runtime's profile: no per-call costs, its own, and weights past 6 MiB spilling
COMPILED_MS_PER = {**{k: v for k, v in MS_PER.items() if k not in CALL_FEATURES}, "compute_unaligned_madds": 3e-8,
                   "fc_weight_bytes": 1e-8, "operators": 0.002, SPILL_FEATURE: 4e-8}
COMPILED = {**SYNTHETIC, "runtime": {"name": "onnxruntime", "version": "onnxruntime test"},
            "model": {"ms_per": COMPILED_MS_PER, "offset_ms": 0.5, "lanes": 16, "cached_weights_mib": 6}}


@pytest.fixture
def profile_path(tmp_path):
    path = tmp_path / "profile.yaml"
    path.write_text(yaml.safe_dump(SYNTHETIC))
    return str(path)


def run(*args):
    return CliRunner().invoke(cli, list(args))


def test_features_by_hand():
    layers = {lay.name: lay for lay in deployed(expand(load_spec("mobilenet_v1"), "0.35", 128))}
    pw = layers["dwsep1.pw"]  # 11 -> 22 channels at 64x64: widths padded to 16 and 24
    row = next(r for r in count(tuple(layers.values())).rows if r.layer.name == "dwsep1.pw")
    f = dict(zip(FEATURES, layer_features(pw, row.madds, row.params, 16)))
    assert row.madds == 11 * 22 * 64 * 64
    assert f["compute_madds"] == pytest.approx(row.madds * (16 * 24) / (11 * 22))  # 4,096 positions: no padding
    assert f["compute_bytes"] == pytest.approx(4 * (11 * 64 * 64 + 22 * 64 * 64) * 24 / 22)
    assert f["weight_bytes"] == 4 * row.params
    assert f["elementwise"] == 22 * 64 * 64 and f["calls"] == 4 and f["depthwise_bytes"] == 0
    dropout = layer_features(next(lay for lay in deployed(expand(load_spec("mobilenet_v2"))) if lay.kind == "dropout"),
                             0, 0, 16)
    assert dropout == (0.0,) * len(FEATURES)


def test_padded_positions_and_unaligned_depthwise():
    report = count(deployed(expand(load_spec("mobilenet_v1"), "0.75", 224)))
    rows = {r.layer.name: r for r in report.rows}
    last = rows["dwsep13.pw"]  # 768 -> 768 channels on a 7x7 map: 49 positions cost like 64 with 16 lanes
    for lanes, padded in ((16, 64), (8, 56)):
        f = dict(zip(FEATURES, layer_features(last.layer, last.madds, last.params, lanes)))
        assert f["compute_madds"] == pytest.approx(last.madds * padded / 49)
    flat = dict(zip(FEATURES, layer_features(last.layer, last.madds, last.params, 16, pad_positions=False)))
    assert flat["compute_madds"] == last.madds
    dw = {name: dict(zip(FEATURES, layer_features(r.layer, r.madds, r.params, 16)))
          for name, r in rows.items() if r.layer.kind == "dw"}
    assert rows["dwsep2.dw"].layer.out_shape[0] == 48 and rows["dwsep1.dw"].layer.out_shape[0] == 24
    assert dw["dwsep2.dw"]["depthwise_bytes"] > 0 and dw["dwsep2.dw"]["depthwise_unaligned_bytes"] == 0
    assert dw["dwsep1.dw"]["depthwise_unaligned_bytes"] > 0 and dw["dwsep1.dw"]["depthwise_bytes"] == 0
    assert all(f["depthwise_calls"] == 3 and f["calls"] == 0 for f in dw.values())  # block, conv, ReLU (BN folded)
    eight = dict(zip(FEATURES, layer_features(rows["dwsep1.dw"].layer, 0, rows["dwsep1.dw"].params, 8)))
    assert eight["depthwise_bytes"] == dw["dwsep1.dw"]["depthwise_unaligned_bytes"]  # 24 is aligned to 8 lanes


# MobileNetV1 at 1.0-224, element by element from Table 1: output elements of the first conv and of
# each depthwise and pointwise layer (every one followed by ReLU)
V1_RELU_ELEMENTS = (32 * 112 * 112 + 32 * 112 * 112 + 64 * 112 * 112 + 64 * 56 * 56 + 128 * 56 * 56
                    + 2 * 128 * 56 * 56 + 128 * 28 * 28 + 256 * 28 * 28 + 2 * 256 * 28 * 28
                    + 256 * 14 * 14 + 512 * 14 * 14 + 5 * 2 * 512 * 14 * 14 + 512 * 7 * 7 + 1024 * 7 * 7
                    + 2 * 1024 * 7 * 7)


@pytest.mark.parametrize("ms_per,expected_ms", [
    # calls: conv1 3 (ConvBNAct, conv, ReLU), 13 pointwise 4 (the same + the block), avgpool 1,
    # fc 3 (Classifier, flatten, linear); depthwise calls: 13 x 3
    ({"calls": 0.004, "depthwise_calls": 0.012}, 0.5 + 0.004 * (3 + 13 * 4 + 1 + 3) + 0.012 * 13 * 3),
    ({"elementwise": 1e-6}, 0.5 + 1e-6 * V1_RELU_ELEMENTS),
])
def test_prediction_by_hand(tmp_path, ms_per, expected_ms):
    path = tmp_path / "profile.yaml"
    path.write_text(yaml.safe_dump({**SYNTHETIC, "model": {"ms_per": {**dict.fromkeys(model_features(True), 0.0), **ms_per},
                                                           "offset_ms": 0.5, "lanes": 16}}))
    profile = load_profile(str(path))
    total, per_layer = profile.predict(count(deployed(expand(load_spec("mobilenet_v1"), "1.0", 224))))
    assert total == pytest.approx(expected_ms, rel=1e-12)
    assert len(per_layer) == 1 + 2 * 13 + 2  # conv1, 13 separable blocks, avgpool, fc
    assert sum(ms for _, ms in per_layer) == pytest.approx(expected_ms - 0.5, rel=1e-12)
    if "calls" in ms_per:  # calls depend on neither alpha nor resolution
        assert dict(per_layer)["dwsep1.pw"] == pytest.approx(4 * 0.004)
        out = json.loads(run("latency", "--profile", str(path), "--alpha", "0.5", "--res", "160", "-f", "json").stdout)
        assert out["predicted_ms"] == pytest.approx(expected_ms, abs=1e-4)
        layers = {layer["name"]: layer["predicted_ms"] for layer in out["layers"]}
        assert (layers["conv1"], layers["dwsep1.dw"], layers["dwsep1.pw"], layers["avgpool1"], layers["fc1"]) == \
            pytest.approx((3 * 0.004, 3 * 0.012, 4 * 0.004, 0.004, 3 * 0.004))


@pytest.mark.parametrize("compiled", [False, True])
@pytest.mark.parametrize("name", ["mobilenet_v1", "mobilenet_v2", "mobilenet_v3_large"])
def test_grid_latency_equals_direct_prediction(profile_path, name, compiled, tmp_path):
    if compiled:  # its positions unpadded, and weights spilling past 6 MiB at α 1 but not at α 0.25
        profile_path = tmp_path / "compiled.yaml"
        profile_path.write_text(yaml.safe_dump(COMPILED))
    profile = load_profile(str(profile_path))
    spec = load_spec(name)
    for c in evaluate(spec, [Fraction(1, 4), Fraction(7, 10), Fraction(1)], [(96, 96), (161, 97)], profile=profile):
        direct, _ = profile.predict(count(deployed(expand(spec, c.alpha, c.resolution))))
        assert abs(c.latency_us - 1000 * direct) <= 1  # truncated to whole microseconds


def test_fit_respects_a_latency_budget(profile_path):
    profile = load_profile(profile_path)
    cands = evaluate(load_spec("mobilenet_v1"), [Fraction(a, 20) for a in range(5, 21)],
                     [(r, r) for r in range(96, 225, 16)], profile=profile)
    result = fit(cands, Limits(latency=8000))
    assert result.best.latency_us <= 8000
    assert all(c.latency_us <= 8000 for c in result.ranked + result.frontier)
    assert result.best.madds == max(c.madds for c in cands if c.latency_us <= 8000)


def test_fit_and_latency_commands(profile_path):
    data = json.loads(run("fit", "--max-latency", "8ms", "--profile", profile_path, "-f", "json").stdout)
    assert data["budgets"] == {"latency": 8000}
    assert data["best"]["predicted_ms"] <= 8.0
    out = json.loads(run("latency", "--profile", profile_path, "--alpha", "0.5", "-f", "json").stdout)
    assert [key for key in out if key != "schema"] == ["model", "alpha", "resolution", "predicted_ms", "layers"]
    assert "predicted latency" in run("latency", "--profile", profile_path).stdout


def test_check_latency_budget(profile_path, tmp_path):
    budgets = tmp_path / "b.yaml"
    budgets.write_text("budgets:\n  - name: fast\n    model: mobilenet_v1\n    alpha: 0.5\n    max_latency: 100ms\n"
                       "    profile: profile.yaml\n")
    ok = run("check", str(budgets), "-f", "json")
    assert ok.exit_code == 0, ok.stderr
    (result,) = json.loads(ok.stdout)["results"]
    assert result["metric"] == "latency" and result["limit"] == 100_000 and 0 < result["value"] < 100_000
    budgets.write_text(budgets.read_text().replace("100ms", "1ms"))
    assert run("check", str(budgets)).exit_code == 1
    adhoc = run("check", "--model", "mobilenet_v1", "--max-latency", "1s", "--profile", profile_path)
    assert adhoc.exit_code == 0


def test_spilled_weights_by_hand(tmp_path):
    """Weights past the cached MiB cost per byte, once per network, shared out
    among the layers by their weights; a network whose weights fit pays none."""
    only_spill = {**dict.fromkeys(COMPILED_MS_PER, 0.0), SPILL_FEATURE: 1e-6}
    path = tmp_path / "spill.yaml"
    path.write_text(yaml.safe_dump({**COMPILED, "model": {**COMPILED["model"], "ms_per": only_spill}}))
    profile = load_profile(str(path))
    assert profile.compiled and profile.position_features == ()
    big = count(deployed(expand(load_spec("mobilenet_v1"), "1.0", 224)))
    params = sum(row.params for row in big.rows)
    assert params == 4_221_032  # as deployed, BatchNorm folded into the convolutions' biases
    total, per_layer = profile.predict(big)
    assert total == pytest.approx(0.5 + 1e-6 * (4 * params - 6 * 2**20), rel=1e-12)
    fc = next(row for row in big.rows if row.layer.name == "fc1")
    assert dict(per_layer)["fc1"] == pytest.approx((total - 0.5) * fc.params / params, rel=1e-12)
    small, _ = profile.predict(count(deployed(expand(load_spec("mobilenet_v1"), "0.25", 224))))
    assert small == 0.5  # 470,000 parameters: 1.8 MB, within the 6 MiB


@pytest.mark.parametrize("content,fragment", [
    (None, "no such file"),
    (yaml.safe_dump({**COMPILED, "model": {**COMPILED["model"], "cached_weights_mib": -1}}),
     "model.cached_weights_mib must be a number of MiB from 0 to 1,048,576, got -1"),
    (yaml.safe_dump({**COMPILED, "model": {**COMPILED["model"], "cached_weights_mib": "big"}}),
     "model.cached_weights_mib must be a number of MiB"),
    (yaml.safe_dump({**COMPILED, "model": {**COMPILED["model"], "ms_per": {**COMPILED_MS_PER, SPILL_FEATURE: -1}}}),
     f"model.ms_per.{SPILL_FEATURE} must be a number from 0 to 1000, got -1"),
    (yaml.safe_dump({**COMPILED, "model": {k: v for k, v in COMPILED["model"].items() if k != "cached_weights_mib"}}),
     "model has no cached_weights_mib: a profile for onnxruntime written by an older mnsize"),
    (yaml.safe_dump({**SYNTHETIC, "model": {**SYNTHETIC["model"], "cached_weights_mib": 6}}),
     "model: unknown key 'cached_weights_mib' (expected ms_per, offset_ms, lanes)"),
    ("format: [\n", "invalid YAML"),
    ("- 1\n", "expected a mapping"),
    ("format: mnsize-profile/1\n", "expected format mnsize-profile/3"),
    (yaml.safe_dump({**SYNTHETIC, "model": {"ms_per": MS_PER, "offset_ms": 0, "lanes": 0}}),
     "model.lanes must be a whole number from 1 to 64, got 0"),
    (yaml.safe_dump({**SYNTHETIC, "model": {"ms_per": MS_PER, "offset_ms": 0}}), "model.lanes"),
    (yaml.safe_dump({**SYNTHETIC, "model": {"ms_per": {**MS_PER, "calls": -1}, "offset_ms": 0}}),
     "model.ms_per.calls must be a number from 0 to 1000"),
    (yaml.safe_dump({**SYNTHETIC, "model": {"ms_per": {k: v for k, v in MS_PER.items() if k != "elementwise"},
                                            "offset_ms": 0}}), "model.ms_per.elementwise"),
    (yaml.safe_dump({**SYNTHETIC, "model": {"ms_per": MS_PER}}), "model.offset_ms"),
])
def test_bad_profiles(tmp_path, content, fragment):
    path = tmp_path / "p.yaml"
    if content is not None:
        path.write_text(content)
    for args in (["latency", "--profile", str(path)], ["fit", "--max-latency", "8ms", "--profile", str(path)]):
        result = run(*args)
        assert result.exit_code == 2 and result.stdout == ""
        (line,) = result.stderr.splitlines()
        assert fragment in line, line


@pytest.mark.parametrize("args,fragment", [
    (["fit", "--max-latency", "8ms"], "--max-latency needs --profile"),
    (["fit", "--max-latency", "8"], "unknown unit ''"),
    (["check", "--model", "mobilenet_v1", "--max-latency", "8ms"], "--max-latency needs --profile"),
    (["latency"], "--profile"),
    (["bench", "--threads", "0"], "--threads"),
    (["bench", "--runs", "0"], "--runs"),
    (["bench", "--alpha", "abc"], "--alpha"),
    (["profile"], "--out"),
    (["profile", "--out", "p.yaml", "--seconds", "1"], "--seconds"),
    (["profile", "--out", "/nonexistent-folder/p.yaml"], "cannot write: no such folder /nonexistent-folder"),
])
def test_latency_bad_arguments(args, fragment):
    result = run(*args)
    assert result.exit_code == 2
    (line,) = result.stderr.splitlines()
    assert fragment in line, line


def test_budget_max_latency_needs_a_profile(tmp_path):
    path = tmp_path / "b.yaml"
    path.write_text("budgets:\n  - name: fast\n    model: mobilenet_v1\n    max_latency: 8ms\n")
    result = run("check", str(path))
    assert result.exit_code == 2 and "max_latency needs 'profile'" in result.stderr


# --------------------------------------------------------------------------- with torch


def test_bench_end_to_end():
    pytest.importorskip("torch", reason="bench needs torch")
    result = run("bench", "--alpha", "0.25", "--res", "32", "--runs", "3", "-f", "json")
    assert result.exit_code == 0, result.stderr
    data = json.loads(result.stdout)
    assert [key for key in data if key != "schema"] == ["model", "alpha", "resolution", "threads", "batch",
                                                        "latency_ms", "statistic", "median_ms", "p10_ms", "p90_ms", "runs", "runtime",
                                                        "runtime_version", "seconds", "round_spread"]
    assert data["runs"] == 3 and 0 < data["p10_ms"] <= data["median_ms"] <= data["p90_ms"]
    assert data["latency_ms"] == data["p10_ms"] and data["statistic"] == "p10"
    assert "(p10; median" in run("bench", "--alpha", "0.25", "--res", "32", "--runs", "2").stdout


def test_bench_refuses_what_does_not_fit_in_memory():
    pytest.importorskip("torch", reason="bench needs torch")
    result = run("bench", "--alpha", "4", "--res", "20000", "--runs", "1")  # ~50 GiB of activations
    assert result.exit_code == 2
    assert "GiB for weights" in result.stderr and "bench runs at most 8 GiB" in result.stderr


def test_profile_end_to_end(tmp_path, monkeypatch):
    pytest.importorskip("torch", reason="profile needs torch")
    from mnsize import calibrate

    monkeypatch.setattr(calibrate, "CALIBRATION_NETWORKS",
                        calibrate.grid_configs("mobilenet_v1", "0.25 0.5", (32, 48, 64))
                        + calibrate.grid_configs("mobilenet_v3_small", "0.5", (32, 64)))
    monkeypatch.setattr(calibrate.calibrate, "__defaults__", (1, 60, calibrate.CALIBRATION_NETWORKS, None, "torch"))
    out = tmp_path / "p.yaml"
    (tmp_path / "mine.yaml").write_text("something: else\n")
    refused = run("profile", "--out", str(tmp_path / "mine.yaml"), "--seconds", "5")
    assert refused.exit_code == 2 and "not written by mnsize profile" in refused.stderr
    made = run("profile", "--out", str(out), "--seconds", "5")
    assert made.exit_code == 0, made.stderr
    profile = load_profile(str(out))
    assert profile.device["threads"] == 1 and profile.error["networks"] == 8 and profile.lanes in (8, 16)
    assert profile.device["allocator"]
    assert run("profile", "--out", str(out), "--seconds", "5").exit_code == 0  # its own file: overwritten
    assert run("latency", "--profile", str(out), "--alpha", "0.25", "--res", "48").exit_code == 0


def test_timing_keeps_freed_memory_on_glibc():
    import platform

    from mnsize.bench import keep_freed_memory

    said = keep_freed_memory()
    if platform.system() == "Linux" and platform.libc_ver()[0] == "glibc":
        assert said == "freed memory kept (malloc thresholds 1024 MiB)"
    else:
        assert said  # says what it did, whatever the platform
