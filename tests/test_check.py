"""mnsize check, the budget gate: statuses, exit codes, every output format."""

from __future__ import annotations

import json
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from click.testing import CliRunner

from mnsize.budgets import load_budgets
from mnsize.cli import cli
from mnsize.errors import BudgetError

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = Path(sys.executable).parent / "mnsize"

PASSING = """\
budgets:
  - name: phone
    model: mobilenet_v1
    alpha: 0.5
    resolution: 224
    max_madds: 150M          # 149,497,088
    max_params: 1.5M         # 1,320,648
"""
OVER = """\
budgets:
  - name: grown
    model: mobilenet_v1
    alpha: 0.75
    resolution: 224
    max_madds: 300M          # 325,400,448: over
    max_params: 3M
"""
WARN = """\
budgets:
  - name: close
    model: mobilenet_v1
    alpha: 0.5
    max_madds: 155M          # 149.5M is 96.4%
    warn_at: 90%
"""


@pytest.fixture
def write(tmp_path):
    def write(name: str, text: str) -> str:
        path = tmp_path / name
        path.write_text(text)
        return str(path)
    return write


def run(*args, env=None):
    return CliRunner(env=env).invoke(cli, ["check", *args])


def results(result) -> list[dict]:
    return json.loads(result.stdout)["results"]


def test_pass(write):
    result = run(write("b.yaml", PASSING), "--format", "json")
    assert result.exit_code == 0, result.stderr
    data = json.loads(result.stdout)
    assert data["passed"] is True
    assert [(r["metric"], r["value"], r["limit"], r["status"]) for r in data["results"]] == [
        ("madds", 149_497_088, 150_000_000, "pass"), ("params", 1_320_648, 1_500_000, "pass")]
    first = data["results"][0]
    assert set(first) >= {"name", "file", "line", "metric", "value", "limit", "margin", "status"}
    assert first["line"] == 6 and first["name"] == "phone"
    assert first["margin"] == pytest.approx(99.664725, abs=1e-4)


def test_over_budget_fails_with_exit_1(write):
    path = write("b.yaml", OVER)
    result = run(path)
    assert result.exit_code == 1
    assert "FAIL" in result.stdout and "over the limit" in result.stdout
    (line,) = result.stderr.splitlines()
    assert line == (f"mnsize check: over budget: {path}:6: grown: mult-adds 325.4M (325,400,448) is 108.5% of "
                    "max_madds 300.0M: over the limit")


def test_warning_still_passes(write):
    result = run(write("b.yaml", WARN), "-f", "json")
    assert result.exit_code == 0
    (r,) = results(result)
    assert r["status"] == "warn" and r["reasons"] == ["above 90% of the limit"]


def test_several_files(write):
    result = run(write("a.yaml", PASSING), write("b.yaml", OVER), "-f", "json")
    assert result.exit_code == 1
    assert [r["name"] for r in results(result)] == ["phone", "phone", "grown", "grown"]
    assert json.loads(result.stdout)["passed"] is False


def test_duplicate_names_across_files(write):
    result = run(write("a.yaml", PASSING), write("b.yaml", PASSING))
    assert result.exit_code == 2
    assert "budget 'phone' is also defined in" in result.stderr
    assert "b.yaml:2: budget 'phone'" in result.stderr  # the entry's line in the second file


def test_ad_hoc_budget():
    ok = run("--model", "mobilenet_v1", "--alpha", "0.5", "--res", "224", "--max-madds", "150M", "-f", "json")
    assert ok.exit_code == 0 and results(ok)[0]["value"] == 149_497_088
    over = run("--model", "mobilenet_v1", "--max-size", "4MB", "--dtype", "int8")
    assert over.exit_code == 1  # 4,221,032 bytes in int8
    assert "size 4.0MiB (4,221,032) is 105.5% of max_size" in over.stderr


def test_relative_model_path_resolves_beside_the_budgets_file(write, tmp_path):
    spec = (ROOT / "configs" / "mobilenet_v1.yaml").read_text()
    (tmp_path / "specs").mkdir()
    (tmp_path / "specs" / "mine.yaml").write_text(spec)
    path = write("b.yaml", PASSING.replace("model: mobilenet_v1", "model: specs/mine.yaml"))
    assert run(path).exit_code == 0


BAD_FILES = [
    ("", ": expected a mapping with a 'budgets' list, got an empty file"),
    ("budgets: []\n", ":1: key 'budgets': expected a non-empty list of budgets"),
    ("budget:\n  - name: x\n", ":1: key 'budget': unknown key (expected budgets)"),
    ("budgets:\n  - name: a\n    model: mobilenet_v1\n    max_maddz: 1M\n",
     ":4: budget 1 (a): key 'max_maddz': unknown key"),
    ("budgets:\n  - name: a\n    model: mobilenet_v1\n    max_madds: 150X\n",
     ":4: budget 1 (a): key 'max_madds': unknown unit 'X' in '150X'"),
    ("budgets:\n  - name: a\n    max_madds: 1M\n", ":2: budget 1 (a): key 'model': missing required key 'model'"),
    ("budgets:\n  - name: a\n    model: mobilenet_v1\n", ":2: budget 1 (a): no limit"),
    ("budgets:\n  - name: a\n    model: mobilenet_v1\n    max_madds: 1M\n  - name: a\n    model: mobilenet_v1\n"
     "    max_madds: 2M\n", ":5: budget 2 (a): key 'name': duplicate budget name 'a' (first at budget 1)"),
    ("budgets:\n  - name: a\n    model: mobilenet_v1\n    max_madds: 1M\n    warn_at: 90\n",
     ":5: budget 1 (a): key 'warn_at': write 90% for a percentage"),
    ("budgets:\n  - name: a\n    model: mobilenet_v1\n    max_madds: 1M\n    dtype: int4\n",
     ":5: budget 1 (a): key 'dtype': expected one of fp32, fp16, int8"),
    ("budgets:\n  - name: a\n    model: mobilenet_v1\n    max_madds: 1M\n    alpha: -1\n",
     ":5: budget 1 (a): key 'alpha': alpha must be > 0"),
    ("budgets:\n  - name: a\n    model: mobilenet_v1\n    max_madds: 1M\n    resolution: [224]\n",
     ":5: budget 1 (a): key 'resolution': expected a resolution"),
    ("budgets:\n  - just a string\n", ":2: budget 1: expected a mapping"),
    ("budgets: [\n", ":2: invalid YAML"),
    ("budgets: !!python/object/apply:os.system ['touch pwned']\n", ":1: invalid YAML: could not determine"),
]


@pytest.mark.parametrize("text,fragment", BAD_FILES)
def test_malformed_budgets_exit_2(write, tmp_path, text, fragment):
    path = write("bad.yaml", text)
    result = run(path, "--output", str(tmp_path / "report.txt"))
    assert result.exit_code == 2
    assert result.stdout == ""
    (line,) = result.stderr.splitlines()
    assert line.startswith(f"mnsize check: error: {path}{fragment}"), line
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.yaml"]  # no report written, nothing executed


@pytest.mark.parametrize("args,fragment", [
    ([], "give a budgets file"),
    (["--model", "mobilenet_v1"], "give a budgets file"),
    (["b.yaml", "--max-madds", "1M"], "not both"),
    (["--max-madds", "1M", "--max-growth", "5%"], "--max-growth needs --baseline"),
    (["--max-madds", "1M", "--max-growth", "5"], "write 5% for a percentage"),
    (["--max-madds", "1M", "--format", "xml"], "--format"),
    (["missing.yaml"], "missing.yaml: no such file"),
    (["--max-madds", "1M", "--model", "nope"], "unknown model 'nope'"),
])
def test_bad_arguments_exit_2(args, fragment):
    result = run(*args)
    assert result.exit_code == 2
    (line,) = result.stderr.splitlines()
    assert line.startswith("mnsize check: error: ") and fragment in line


def test_github_annotations_and_summary(write, tmp_path):
    summary = tmp_path / "summary.md"
    over, warn = write("over.yaml", OVER), write("warn.yaml", WARN)
    result = run(over, warn, "--format", "github", env={"GITHUB_STEP_SUMMARY": str(summary)})
    assert result.exit_code == 1
    lines = result.stdout.splitlines()
    commands = [line.split("::") for line in lines]
    error = next(c for c in commands if c[1].startswith("error"))
    props = dict(p.split("=", 1) for p in error[1].split(" ", 1)[1].split(","))
    assert props["file"] == over and props["line"] == "6" and props["title"] == "mnsize budget grown"
    assert "325.4M" in error[2] and "108.5%25 of max_madds" in error[2]  # % escaped as GitHub wants
    warning = next(c for c in commands if c[1].startswith("warning"))
    assert dict(p.split("=", 1) for p in warning[1].split(" ", 1)[1].split(","))["line"] == "5"
    assert lines[-1] == "::notice title=mnsize check::3 checks, 1 over budget"
    text = summary.read_text()
    assert text.startswith("### mnsize check: FAILED")
    assert "| grown | mult-adds | 325,400,448 | 300,000,000 | 108.5% | ❌ FAIL |" in text


def test_junit_parses_back(write, tmp_path):
    out = tmp_path / "report.xml"
    result = run(write("over.yaml", OVER), write("ok.yaml", PASSING), "--format", "junit", "--output", str(out))
    assert result.exit_code == 1
    assert result.stdout == ""
    root = ET.parse(out).getroot()
    assert root.tag == "testsuites" and root.get("tests") == "4" and root.get("failures") == "1"
    suites = root.findall("testsuite")
    assert [s.get("failures") for s in suites] == ["1", "0"]
    cases = root.iter("testcase")
    failed = [(c.get("classname"), c.get("name"), c.get("line")) for c in cases if c.find("failure") is not None]
    assert failed == [("grown", "max_madds", "6")]


def test_baseline_growth(write, tmp_path):
    base = tmp_path / "baseline.json"
    first = write("b.yaml", PASSING.replace("max_madds: 150M", "max_madds: 400M")
                  .replace("max_params: 1.5M", "max_params: 4M"))
    made = run(first, "--write-baseline", str(base))
    assert made.exit_code == 0
    recorded = json.loads(base.read_text())
    assert recorded["budgets"]["phone"]["madds"] == 149_497_088
    assert run(first, "--baseline", str(base), "--max-growth", "5%").exit_code == 0
    # the config grows from alpha 0.5 to 0.55: mult-adds +19.8%, params +21.2%: within limits, over the growth
    grown = write("b.yaml", (tmp_path / "b.yaml").read_text().replace("alpha: 0.5", "alpha: 0.55"))
    result = run(grown, "--baseline", str(base), "--max-growth", "5%", "-f", "json")
    assert result.exit_code == 1
    madds, params = results(result)
    assert madds["status"] == "fail" and madds["baseline"] == 149_497_088
    assert madds["reasons"][0].startswith("grew ") and "since the baseline (at most 5%)" in madds["reasons"][0]
    assert run(grown, "--baseline", str(base), "--max-growth", "25%").exit_code == 0


def test_bad_baseline(write, tmp_path):
    path = write("b.yaml", PASSING)
    (tmp_path / "junk.json").write_text("{not json")
    result = run(path, "--baseline", str(tmp_path / "junk.json"), "--max-growth", "5%")
    assert result.exit_code == 2 and "not a baseline file" in result.stderr


def test_the_projects_own_budgets_pass():
    assert len(load_budgets(str(ROOT / "configs" / "budgets.yaml"))) == 3
    assert run(str(ROOT / "configs" / "budgets.yaml")).exit_code == 0


def test_budget_error_names_everything(write):
    with pytest.raises(BudgetError) as info:
        load_budgets(write("b.yaml", "budgets:\n  - name: a\n    model: m\n    max_params: lots\n"))
    assert info.value.entry == 1 and info.value.key == "max_params" and info.value.line == 4


@pytest.mark.parametrize("text,code", [(PASSING, 0), (OVER, 1), ("budgets: 3\n", 2)])
def test_exit_codes_through_a_real_process(write, text, code):
    proc = subprocess.run([str(SCRIPT), "check", write("b.yaml", text)], capture_output=True, text=True, timeout=60)
    assert proc.returncode == code
    assert "Traceback" not in proc.stderr


@pytest.mark.parametrize("content,fragment", [
    (None, "no such baseline file (write one with --write-baseline)"),
    ("[1, 2]", "not an mnsize baseline"),
    ('{"format": "other/1", "budgets": {}}', "not an mnsize baseline"),
    ('{"format": "mnsize-baseline/1", "budgets": {"phone": 3}}', "budget 'phone': expected an object"),
    ('{"format": "mnsize-baseline/1", "budgets": {"phone": {"madds": -1}}}', "must be non-negative integers"),
    (b"\xff\xfe", "not a baseline file"),
])
def test_baseline_files_are_validated(write, tmp_path, content, fragment):
    path = tmp_path / "base.json"
    if isinstance(content, bytes):
        path.write_bytes(content)
    elif content is not None:
        path.write_text(content)
    result = run(write("b.yaml", PASSING), "--baseline", str(path), "--max-growth", "5%")
    assert result.exit_code == 2
    (line,) = result.stderr.splitlines()
    assert fragment in line


def test_unwritable_output_is_a_tool_error(write, tmp_path):
    result = run(write("b.yaml", PASSING), "--output", str(tmp_path))  # a directory
    assert result.exit_code == 2 and "is a folder, not a file" in result.stderr
