"""Profiles per runtime: networks exported for a device mnsize cannot run
on, timed there (here: onnxruntime in the test), fitted back from a CSV;
the refusals of that CSV; profile quality and the warnings of the commands
that use a poor profile; the previous format read as torch's."""

from __future__ import annotations

import csv
import json
import statistics
import time

import pytest
import yaml
from click.testing import CliRunner

from mnsize import calibrate
from mnsize.cli import cli
from mnsize.latency import (CACHE_CHOICES_MIB, CALL_FEATURES, COMPILED_FEATURES, FEATURES, SPILL_FEATURE, load_profile,
                            model_features)

TINY = (calibrate.grid_configs("mobilenet_v1", "0.25 0.5 0.75", (32, 48, 64))
        + calibrate.grid_configs("mobilenet_v2", "0.35", (32, 48, 64))
        + calibrate.grid_configs("mobilenet_v3_small", "0.5", (32, 48, 64))
        + calibrate.grid_configs("mobilenet_v3_large", "0.5", (32,)))


def run(*args):
    return CliRunner().invoke(cli, [str(a) for a in args])


def one_line(result) -> str:
    assert result.exit_code == 2, result.output
    (line,) = result.stderr.splitlines()
    return line


@pytest.fixture
def exported(tmp_path, monkeypatch):
    pytest.importorskip("onnx", reason="export writes ONNX files")
    monkeypatch.setattr(calibrate, "CALIBRATION_NETWORKS", TINY)
    folder = tmp_path / "nets"
    result = run("profile", "--export", folder, "--runtime", "onnxruntime")
    assert result.exit_code == 0, result.output
    return folder


def write_timings(folder, rows, header=("file", "median_ms")):
    path = folder / "timings.csv"
    with open(path, "w", newline="", encoding="utf-8") as file:
        writer = csv.writer(file)
        writer.writerow(header)
        writer.writerows(rows)
    return path


def manifest_files(folder) -> list[str]:
    with open(folder / "manifest.csv", newline="", encoding="utf-8") as file:
        return [row["file"] for row in csv.DictReader(file)]


def test_export_time_elsewhere_and_fit(exported, tmp_path):
    ort = pytest.importorskip("onnxruntime", reason="the test times the files with onnxruntime")
    with open(exported / "manifest.csv", newline="", encoding="utf-8") as file:
        reader = csv.DictReader(file)
        assert reader.fieldnames[:4] == ["file", "model", "alpha", "resolution"]
        manifest = list(reader)
    assert [(r["model"], r["alpha"], int(r["resolution"])) for r in manifest] == list(TINY)
    assert sorted(p.name for p in exported.iterdir()) == sorted([r["file"] for r in manifest] + ["manifest.csv"])
    rows = []
    for entry in manifest:
        session = ort.InferenceSession(str(exported / entry["file"]), providers=["CPUExecutionProvider"])
        (shape,) = [i.shape for i in session.get_inputs()]
        assert shape == [1, 3, int(entry["resolution"]), int(entry["resolution"])]
        feed = {session.get_inputs()[0].name: __import__("numpy").zeros(shape, dtype="float32")}
        samples = []
        for _ in range(7):
            start = time.perf_counter()
            session.run(None, feed)
            samples.append((time.perf_counter() - start) * 1000)
        rows.append((entry["file"], statistics.median(samples[2:])))
    timings = write_timings(exported, rows)
    out = tmp_path / "p.yaml"
    made = run("profile", "--from", timings, "--out", out)
    assert made.exit_code == 0, made.output
    assert f"wrote {out}: onnxruntime, {len(TINY)} networks" in made.stderr
    data = yaml.safe_load(out.read_text())
    assert data["runtime"]["name"] == "onnxruntime" and data["quality"] in ("good", "poor")
    # no per-call costs in a graph runtime, and the costs of its own plan
    assert set(data["model"]["ms_per"]) == set(FEATURES) - set(CALL_FEATURES) | {SPILL_FEATURE}
    assert set(COMPILED_FEATURES) <= set(data["model"]["ms_per"])
    assert data["model"]["cached_weights_mib"] in CACHE_CHOICES_MIB
    profile = load_profile(str(out))
    assert profile.runtime == "onnxruntime" and profile.error["networks"] == len(TINY)
    predicted = run("latency", "--profile", out, "--runtime", "onnxruntime", "--alpha", "0.5", "--res", "64")
    assert predicted.exit_code == 0, predicted.output
    assert "predicted latency" in predicted.stdout


def test_export_refuses_a_folder_that_is_not_empty(tmp_path):
    (tmp_path / "mine.txt").write_text("keep\n")
    line = one_line(run("profile", "--export", tmp_path, "--runtime", "onnxruntime"))
    assert line == f"Error: {tmp_path}: the folder is not empty; give --force to write into it" or \
        "not empty; give --force" in line
    assert sorted(p.name for p in tmp_path.iterdir()) == ["mine.txt"]


def fitted_times(lanes: int = 8) -> list[float]:
    """Times that a model of the runtime's features explains exactly."""
    ms_per = {"compute_madds": 2e-8, "compute_bytes": 1e-7, "weight_bytes": 2e-7, "depthwise_bytes": 3e-7,
              "depthwise_unaligned_bytes": 6e-7, "other_bytes": 5e-8, "elementwise": 4e-7}
    return [0.3 + sum(ms_per.get(name, 0.0) * value for name, value in zip(FEATURES, calibrate.features_of(c, lanes)))
            for c in TINY]


@pytest.mark.parametrize("rows,fragment,line", [
    ([("nope.onnx", 1.0)], "'nope.onnx' is not in the manifest", 2),
    ([("FIRST", 1.0), ("FIRST", 2.0)], "is timed twice (first on line 2)", 3),
    ([("FIRST", 0)], "median_ms must be a positive, finite number of milliseconds, got '0'", 2),
    ([("FIRST", -1.5)], "got '-1.5'", 2),
    ([("FIRST", "abc")], "got 'abc'", 2),
    ([("FIRST", "nan")], "got 'nan'", 2),
    ([("FIRST", "inf")], "got 'inf'", 2),
    ([("FIRST", "")], "got ''", 2),
    ([("FIRST", 1.0)], "1 networks timed; a profile for onnxruntime needs at least 16 to fit", 2),
])
def test_from_refuses_bad_timings(exported, tmp_path, rows, fragment, line):
    first = manifest_files(exported)[0]
    timings = write_timings(exported, [(first if f == "FIRST" else f, ms) for f, ms in rows])
    out = tmp_path / "p.yaml"
    text = one_line(run("profile", "--from", timings, "--out", out))
    assert f"{timings}:{line}: " in text and fragment in text, text
    assert not out.exists()


def test_from_refuses_missing_columns_and_too_few_for_torch(exported, tmp_path):
    timings = write_timings(exported, [("a.onnx", 1.0)], header=("file", "ms"))
    text = one_line(run("profile", "--from", timings, "--out", tmp_path / "p.yaml"))
    assert f"{timings}:1: missing column median_ms (expected file, median_ms)" in text
    files = manifest_files(exported)
    timings = write_timings(exported, list(zip(files[:11], fitted_times()[:11])))
    text = one_line(run("profile", "--from", timings, "--out", tmp_path / "p.yaml", "--runtime", "torch"))
    assert f"{timings}:12: 11 networks timed; a profile for torch needs at least 12 to fit" in text


def test_from_takes_another_manifest(exported, tmp_path):
    timings = tmp_path / "elsewhere.csv"
    timings.write_text("file,median_ms\n" + "".join(f"{f},{ms}\n" for f, ms in
                                                    zip(manifest_files(exported), fitted_times())))
    out = tmp_path / "p.yaml"
    missing = one_line(run("profile", "--from", timings, "--out", out))
    assert "manifest.csv: cannot read" in missing
    made = run("profile", "--from", timings, "--manifest", exported / "manifest.csv", "--out", out)
    assert made.exit_code == 0, made.output
    assert load_profile(str(out)).runtime == "onnxruntime"


@pytest.fixture
def good_and_poor(exported, tmp_path):
    files, times = manifest_files(exported), fitted_times()
    made = {}
    for quality, scale in (("good", [1] * len(times)), ("poor", ([1, 3, 1, 2.5, 1] * 4)[:len(times)])):
        timings = write_timings(exported, [(f, t * s) for f, t, s in zip(files, times, scale)])
        out = tmp_path / f"{quality}.yaml"
        result = run("profile", "--from", timings, "--out", out, "--runtime", "onnxruntime")
        assert result.exit_code == 0, result.output
        made[quality] = (out, result)
    return made


def test_quality_is_marked_and_warned(good_and_poor):
    good, good_run = good_and_poor["good"]
    poor, poor_run = good_and_poor["poor"]
    assert yaml.safe_load(good.read_text())["quality"] == "good"
    assert yaml.safe_load(good.read_text())["error"]["held_out_within_10pct"] == 1.0
    assert "warning" not in good_run.stderr and "quality good" in good_run.stderr
    data = yaml.safe_load(poor.read_text())
    assert data["quality"] == "poor" and data["error"]["held_out_within_10pct"] < 0.8
    assert "quality poor" in poor_run.stderr and "warning: a poor profile" in poor_run.stderr


def test_commands_warn_once_of_a_poor_profile(good_and_poor, tmp_path):
    for quality, (path, _) in good_and_poor.items():
        budgets = tmp_path / f"{quality}-budgets.yaml"
        budgets.write_text("budgets:\n" + "".join(
            f"  - name: b{i}\n    model: mobilenet_v1\n    alpha: 0.5\n    max_latency: 10s\n    profile: {path.name}\n"
            for i in range(2)))
        for args in (["latency", "--profile", path, "--alpha", "0.5"],
                     ["fit", "--max-latency", "10s", "--profile", path, "--alphas", "0.5", "--resolutions", "128"],
                     ["check", budgets]):
            result = run(*args)
            assert result.exit_code == 0, result.output
            warnings = [line for line in result.stderr.splitlines() if "poor latency profile" in line]
            if quality == "good":
                assert warnings == []
            else:
                (line,) = warnings
                assert f"warning: {path}: a poor latency profile" in line and "within ±10%" in line


def test_latency_refuses_another_runtimes_profile(good_and_poor):
    path, _ = good_and_poor["good"]
    line = one_line(run("latency", "--profile", path, "--runtime", "torch"))
    assert f"{path}: a profile made for onnxruntime, not for --runtime torch" in line
    silent = run("latency", "--profile", path)
    assert silent.exit_code == 0 and silent.stderr == ""


def test_the_previous_format_reads_as_torch(tmp_path):
    old = {"format": "mnsize-profile/2", "written_by": "mnsize profile",
           "device": {"cpu": "test", "threads": 1, "torch": "2.0.0", "date": "2026-11-21"},
           "model": {"ms_per": {**dict.fromkeys(model_features(True), 1e-8), "calls": 0.004}, "offset_ms": 0.5, "lanes": 16},
           "error": {"networks": 112, "held_out": 22, "held_out_median_error_pct": 3.0,
                     "held_out_within_10pct": 0.95}}
    path = tmp_path / "old.yaml"
    path.write_text(yaml.safe_dump(old))
    profile = load_profile(str(path))
    assert (profile.runtime, profile.runtime_version, profile.quality) == ("torch", "2.0.0", "good")
    assert run("latency", "--profile", path, "--runtime", "torch").exit_code == 0
    assert "made for torch" in one_line(run("latency", "--profile", path, "--runtime", "onnxruntime"))


def test_an_older_compiled_runtimes_profile_is_refused_by_name(good_and_poor, tmp_path):
    """A compiled runtime's profile from before its model counted layouts,
    fc weights and operators: its coefficients mean other things now, so it
    is refused, naming the missing cost, rather than predicting off."""
    path, _ = good_and_poor["good"]
    data = yaml.safe_load(open(path, encoding="utf-8"))
    for name in ("fc_weight_bytes", "operators"):
        del data["model"]["ms_per"][name]
    old = tmp_path / "old.yaml"
    old.write_text(yaml.safe_dump(data))
    line = one_line(run("latency", "--profile", old, "--runtime", "onnxruntime"))
    assert line.endswith(f"{old}: not a usable latency profile: model.ms_per has no fc_weight_bytes: a profile for "
                         "onnxruntime written by an older mnsize, whose model counted onnxruntime's layouts "
                         "otherwise; make it again with mnsize profile")


def test_a_compiled_profile_without_the_cost_per_channel_predicts_as_it_did(good_and_poor, tmp_path):
    """The cost per channel of plain-layout depthwise convolutions came after
    the other compiled costs: a profile without it reads it as 0, so it
    predicts exactly what it did, and a profile with it charges V1 α 0.55,
    whose 17-channel depthwise layers run in plain layout, for it."""
    path, _ = good_and_poor["good"]
    data = yaml.safe_load(open(path, encoding="utf-8"))
    versions = {}
    for name, cost in (("zero", 0.0), ("without", None), ("charged", 1e-3)):
        ms_per = {**data["model"]["ms_per"], "depthwise_unaligned_channels": cost}
        if cost is None:
            del ms_per["depthwise_unaligned_channels"]
        versions[name] = tmp_path / f"{name}.yaml"
        versions[name].write_text(yaml.safe_dump({**data, "model": {**data["model"], "ms_per": ms_per}}))
    predicted = {}
    for name, file in versions.items():
        result = run("latency", "--profile", file, "--alpha", "0.55", "--res", "128", "-f", "json")
        assert result.exit_code == 0, result.output
        predicted[name] = json.loads(result.stdout)["predicted_ms"]
    assert predicted["without"] == predicted["zero"]
    assert predicted["charged"] > predicted["zero"]
