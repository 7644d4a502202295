"""Refusals at the edges of fit, plot, check and latency profiles: what a
careless or hostile command line must not get past."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from mnsize.cli import cli

from .test_latency import SYNTHETIC

ROOT = Path(__file__).resolve().parent.parent


def run(*args, **kwargs):
    return CliRunner().invoke(cli, [str(a) for a in args], **kwargs)


def one_line_error(result, command: str) -> str:
    assert result.exit_code == 2, (result.exit_code, result.output)
    assert result.stdout == ""
    (line,) = result.stderr.splitlines()
    assert line.startswith(f"mnsize {command}: error: ")
    return line


def test_plot_never_draws_over_its_own_spec_through_a_link(tmp_path):
    pytest.importorskip("matplotlib")
    spec = tmp_path / "spec.yaml"
    spec.write_bytes((ROOT / "configs" / "mobilenet_v1.yaml").read_bytes())
    (tmp_path / "out.png").symlink_to(spec)
    line = one_line_error(run("plot", "--model", spec, "--out", tmp_path / "out.png"), "plot")
    assert "an input of this run" in line
    assert spec.read_bytes() == (ROOT / "configs" / "mobilenet_v1.yaml").read_bytes()


def test_plot_never_draws_over_the_published_figures(tmp_path):
    from mnsize.published import table_path

    (tmp_path / "out.svg").symlink_to(table_path())
    before = Path(table_path()).read_bytes()
    assert "an input of this run" in one_line_error(run("plot", "--out", tmp_path / "out.svg"), "plot")
    assert Path(table_path()).read_bytes() == before


def test_top1_objective_without_published_checkpoints_is_bad_input():
    line = one_line_error(run("fit", "--max-madds", "150M", "--objective", "top1", "--model", "mobilenet_v1_shallow"),
                          "fit")
    assert "no published checkpoints" in line


@pytest.mark.parametrize("fmt", ["table", "json"])
def test_top1_objective_with_nothing_to_rank_is_a_failed_search(fmt):
    result = run("fit", "--max-madds", "150M", "--objective", "top1", "--alphas", "0.3", "--resolutions",
                 "224,160", "-f", fmt)
    assert result.exit_code == 1, result.output
    (line,) = result.stderr.splitlines()
    assert line == ("mnsize fit: nothing ranked: none of the 2 candidates within budget has a published top-1; "
                    "rank them with --objective madds or params")
    if fmt == "json":
        data = json.loads(result.stdout)
        assert data["best"] is None and data["unranked_count"] == 2


@pytest.mark.parametrize("command", [["grid"], ["fit", "--max-madds", "150M"]])
def test_classes_are_bounded_in_the_search_commands(command):
    line = one_line_error(run(*command, "--classes", "2000000"), command[0])
    assert "1 to 1,000,000" in line


def test_check_refuses_an_ad_hoc_dtype_beside_budgets_files():
    line = one_line_error(run("check", ROOT / "configs" / "budgets.yaml", "--dtype", "int8"), "check")
    assert "not both" in line


@pytest.fixture
def all_but_zero_profile(tmp_path):
    profile = {**SYNTHETIC, "model": {**SYNTHETIC["model"], "offset_ms": 0,
                                      "ms_per": dict.fromkeys(SYNTHETIC["model"]["ms_per"], 1e-320)}}
    path = tmp_path / "tiny.yaml"
    path.write_text(yaml.safe_dump(profile))
    return path


@pytest.mark.parametrize("command", [
    ["check", "--model", "mobilenet_v1", "--max-latency", "1us", "--profile"],
    ["latency", "--profile"],
    ["fit", "--max-latency", "1ms", "--profile"],
])
def test_a_profile_that_predicts_no_time_passes_no_budget(all_but_zero_profile, command):
    line = one_line_error(run(*command, all_but_zero_profile), command[0])
    assert "not a usable latency profile" in line and "under the 1 µs" in line


def test_a_latency_is_rounded_up_to_whole_microseconds(tmp_path):
    """A prediction of 0.4 µs more than a whole number never passes a limit at that number."""
    from mnsize.latency import load_profile

    path = tmp_path / "p.yaml"
    path.write_text(yaml.safe_dump(SYNTHETIC))
    profile = load_profile(str(path))
    assert profile.microseconds(2.0004) == 2001
    assert profile.microseconds(2.0) == 2000


@pytest.mark.skipif(sys.getfilesystemencoding() != "utf-8", reason="file names as UTF-8 bytes")
def test_json_holds_only_valid_unicode_for_a_file_name_that_is_not_utf8(tmp_path):
    budgets = tmp_path / os.fsdecode(b"b\xff.yaml")
    budgets.write_text("budgets:\n  - name: a\n    model: mobilenet_v1\n    max_madds: 1G\n")
    result = run("check", budgets, "--format", "json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    data["results"][0]["file"].encode("utf-8")  # a lone surrogate would raise here
    assert data["results"][0]["file"].endswith("b\\udcff.yaml")


def test_fit_measure_names_the_candidate_too_large_to_time_before_timing_any(monkeypatch):
    import mnsize.bench as bench

    monkeypatch.setattr(bench, "_build", lambda *args: pytest.fail("nothing may be built or timed"))
    line = one_line_error(run("fit", "--max-madds", "1e30", "--alphas", "0.25,100", "--resolutions", "64,100000",
                              "--measure"), "fit")
    assert "mobilenet_v1 α 100 100000×100000" in line and "at most 8 GiB" in line


def test_write_baseline_reads_each_spec_once(tmp_path, monkeypatch):
    import mnsize.gate as check

    loads = []
    real = check.load_spec
    monkeypatch.setattr(check, "load_spec", lambda name: loads.append(name) or real(name))
    budgets = tmp_path / "b.yaml"
    budgets.write_text("budgets:\n  - name: a\n    model: mobilenet_v1\n    max_madds: 1G\n")
    result = run("check", budgets, "--write-baseline", tmp_path / "base.json")
    assert result.exit_code == 0, result.output
    assert loads == ["mobilenet_v1"]
    assert json.loads((tmp_path / "base.json").read_text())["budgets"]["a"]["madds"] == 568_740_352


def test_a_json_error_says_what_the_stderr_line_says(tmp_path, monkeypatch):
    import mnsize.gate as check

    def too_deep(*args, **kwargs):
        raise RecursionError("maximum recursion depth exceeded")

    monkeypatch.setattr(check, "measure", too_deep)
    result = run("check", "--model", "mobilenet_v1", "--max-madds", "1G", "--format", "json")
    assert result.exit_code == 2
    message = json.loads(result.stdout)["error"]["message"]
    (line,) = result.stderr.splitlines()
    assert line == f"mnsize check: error: {message}" and "nested too deeply" in message


@pytest.mark.parametrize("res", ["0224", "224x0128", "２２４"])
def test_res_reads_a_side_as_resolutions_does(res):
    for line in (one_line_error(run("table", "--res", res), "table"),
                 one_line_error(run("grid", "--resolutions", res), "grid")):
        assert "is not a whole number" in line or "expected a resolution" in line
