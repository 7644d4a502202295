"""mnsize check as a CI gate that cannot be fooled: its outputs never land on
its inputs and are written whole or not at all, a job summary never decides
the verdict, every JSON document is strict and matches its published schema,
the user's text cannot forge output, and the pre-commit hook and the GitHub
Action run it as documented."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import xml.etree.ElementTree as ET
from importlib import resources
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from mnsize.cli import cli

from .test_check import OVER

ROOT = Path(__file__).resolve().parent.parent
SPEC = ROOT / "configs" / "mobilenet_v1.yaml"

ROOMY = """\
budgets:
  - name: phone
    model: mobilenet_v1
    alpha: 0.5
    resolution: 224
    max_madds: 400M          # 149,497,088
    max_params: 4M           # 1,320,648
"""


def run(*args, env=None):
    return CliRunner(env=env).invoke(cli, ["check", *args])


def strict_json(text: str):
    """Parse as RFC 8259 does: NaN and Infinity are not JSON."""
    def refuse(constant):
        raise ValueError(f"not JSON: {constant}")
    return json.loads(text, parse_constant=refuse)


@pytest.fixture
def write(tmp_path):
    def write(name: str, text: str) -> str:
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
        return str(path)
    return write


@pytest.fixture
def profile(tmp_path):
    from tests.test_latency import SYNTHETIC

    path = tmp_path / "profile.yaml"
    path.write_text(yaml.safe_dump(SYNTHETIC))
    return str(path)


def files_in(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in folder.iterdir() if p.is_file()}


# --------------------------------------------------------------------------- outputs never overwrite inputs


def test_an_output_that_is_an_input_is_refused_before_any_work(write, tmp_path, profile):
    budgets = write("b.yaml", OVER)
    spec = write("specs/mine.yaml", SPEC.read_text())
    fast = write("fast.yaml", "budgets:\n  - name: fast\n    model: specs/mine.yaml\n    max_latency: 1s\n"
                              "    profile: profile.yaml\n")
    baseline = tmp_path / "base.json"
    assert run(budgets, "--write-baseline", str(baseline)).exit_code == 1
    os.symlink(budgets, tmp_path / "link.yaml")
    cases = [
        ([budgets, "--output", budgets], budgets),
        ([budgets, "--write-baseline", budgets], budgets),
        ([budgets, "--output", str(tmp_path / "link.yaml")], budgets),            # through a link
        ([fast, "--output", spec], spec),                                         # a spec a budget uses
        ([fast, "--write-baseline", profile], profile),                           # a budget's profile
        ([budgets, "--baseline", str(baseline), "--output", str(baseline)], str(baseline)),
        (["--model", spec, "--max-madds", "1G", "--output", spec], spec),         # ad hoc: the spec
        (["--model", "mobilenet_v1", "--max-latency", "1s", "--profile", profile, "--output", profile], profile),
    ]
    for args, victim in cases:
        before = files_in(tmp_path)
        result = run(*args)
        assert result.exit_code == 2, (args, result.stderr)
        (line,) = result.stderr.splitlines()
        assert "an input of this run" in line, line
        assert result.stdout == ""
        assert files_in(tmp_path) == before, args  # nothing written, nothing replaced


def test_a_built_in_spec_is_an_input(tmp_path, monkeypatch):
    import mnsize.models

    configs = tmp_path / "configs"  # a copy stands in for the shipped specs
    configs.mkdir()
    spec = configs / "mobilenet_v1.yaml"
    spec.write_text(SPEC.read_text())
    monkeypatch.setattr(mnsize.models, "_configs", lambda: str(configs))
    result = run("--model", "mobilenet_v1", "--max-madds", "1G", "--output", str(spec))
    assert result.exit_code == 2 and "an input of this run" in result.stderr
    assert spec.read_text() == SPEC.read_text()


def test_two_outputs_in_one_file_are_refused(tmp_path, write):
    budgets = write("b.yaml", ROOMY)
    report = tmp_path / "same.json"
    result = run(budgets, "-f", "json", "--output", str(report), "--write-baseline", str(report))
    assert result.exit_code == 2 and "two outputs" in result.stderr
    assert not report.exists()
    report.write_text("old")
    os.link(report, tmp_path / "hard.json")  # the same file under another name
    result = run(budgets, "--output", str(report), "--write-baseline", str(tmp_path / "hard.json"))
    assert result.exit_code == 2 and "two outputs" in result.stderr
    assert report.read_text() == "old"


# --------------------------------------------------------------------------- atomic writes


@pytest.fixture
def full_disk(monkeypatch):
    """Every fsync fails as on a full disk: a write that reaches it must leave
    the old file as it was."""
    def fsync(fd):
        raise OSError(28, "No space left on device")
    monkeypatch.setattr(os, "fsync", fsync)


@pytest.mark.parametrize("option", ["--output", "--write-baseline"])
def test_a_failed_write_leaves_the_old_file(tmp_path, write, full_disk, option):
    budgets = write("b.yaml", ROOMY)
    target = tmp_path / "out.json"
    target.write_text('{"old": true}\n')
    result = run(budgets, "-f", "json", option, str(target))
    assert result.exit_code == 2
    (line,) = result.stderr.splitlines()
    assert "No space left on device" in line and str(target) in line
    assert target.read_text() == '{"old": true}\n'
    assert sorted(p.name for p in tmp_path.iterdir()) == ["b.yaml", "out.json"]  # no temporary file left


def test_a_failed_summary_leaves_the_old_summary_and_the_verdict(tmp_path, write, full_disk):
    summary = tmp_path / "summary.md"
    summary.write_text("earlier step\n")
    result = run(write("b.yaml", OVER), env={"GITHUB_STEP_SUMMARY": str(summary)})
    assert result.exit_code == 1  # over budget, whatever became of the summary
    assert summary.read_text() == "earlier step\n"
    assert "warning: GITHUB_STEP_SUMMARY" in result.stderr and "over budget: " in result.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["b.yaml", "summary.md"]


def test_the_summary_is_appended(tmp_path, write):
    summary = tmp_path / "summary.md"
    summary.write_text("earlier step\n")
    assert run(write("b.yaml", OVER), env={"GITHUB_STEP_SUMMARY": str(summary)}).exit_code == 1
    text = summary.read_text()
    assert text.startswith("earlier step\n### mnsize check: FAILED")


# --------------------------------------------------------------------------- destinations before any work


@pytest.mark.parametrize("where", ["missing folder", "a folder", "/dev/full"])
def test_an_unwritable_summary_is_a_warning(tmp_path, write, where):
    summary = {"missing folder": str(tmp_path / "nope" / "summary.md"), "a folder": str(tmp_path),
               "/dev/full": "/dev/full"}[where]
    if where == "/dev/full" and not os.path.exists("/dev/full"):
        pytest.skip("no /dev/full here")
    report, baseline = tmp_path / "report.json", tmp_path / "baseline.json"
    result = run(write("b.yaml", OVER), "-f", "json", "--output", str(report), "--write-baseline", str(baseline),
                 env={"GITHUB_STEP_SUMMARY": summary})
    assert result.exit_code == 1, result.stderr
    lines = result.stderr.splitlines()
    assert lines[0].startswith("mnsize check: warning: GITHUB_STEP_SUMMARY: ")
    assert lines[0].endswith("; no job summary written")
    assert any(line.startswith("mnsize check: over budget: ") for line in lines)
    assert strict_json(report.read_text())["passed"] is False
    assert strict_json(baseline.read_text())["budgets"]["grown"]["madds"] == 325_400_448


def test_an_unwritable_output_is_refused_before_the_baseline_is_written(tmp_path, write):
    baseline = tmp_path / "baseline.json"
    result = run(write("b.yaml", OVER), "--write-baseline", str(baseline), "--output", str(tmp_path))
    assert result.exit_code == 2
    assert not baseline.exists()


# --------------------------------------------------------------------------- strict JSON, zero limits


def test_a_zero_limit_is_strict_json_and_a_dash(write, profile):
    runs = [
        run("--max-size", "0", "-f", "json"),
        run(write("b.yaml", "budgets:\n  - name: none\n    model: mobilenet_v1\n    max_madds: 0\n"), "-f", "json"),
        run("--max-latency", "0ms", "--profile", profile, "-f", "json"),
    ]
    for result in runs:
        assert result.exit_code == 1, result.stderr
        (r,) = strict_json(result.stdout)["results"]
        assert r["limit"] == 0 and r["margin"] is None and r["over_limit"] is True
        assert "inf" not in result.stderr.lower()
    table = run("--max-size", "0")
    row = next(line for line in table.stdout.splitlines() if "16,884,128" in line)
    assert [cell.strip() for cell in row.split("│")][5:7] == ["0", "-"]
    assert "against max_size 0B" in table.stderr
    for fmt in ("github", "junit"):
        assert "inf" not in run("--max-size", "0", "-f", fmt).stdout.lower()


# --------------------------------------------------------------------------- the user's text


HOSTILE = '"evil\\e]0;pwned\\a\\e[2J | <b>x</b> & [/] [bold]\\nsecond\\u2028line\\x01"'


def test_hostile_budget_names_are_escaped_everywhere(tmp_path, write):
    budgets = write("b.yaml", OVER.replace("name: grown", f"name: {HOSTILE}"))
    summary = tmp_path / "summary.md"
    env = {"GITHUB_STEP_SUMMARY": str(summary)}
    raw = ("\x1b", "\x07", "\x01", "\u2028")

    table = run(budgets, env=env)
    assert table.exit_code == 1, table.stderr
    for stream in (table.stdout, table.stderr):
        assert not any(c in stream for c in raw)
    assert "evil\\x1b]0;pwned" in table.stdout and "[/] [bold]" in table.stdout
    over = table.stderr.splitlines()
    assert len(over) == 1 and over[0].startswith("mnsize check: over budget: ")

    github = run(budgets, "-f", "github")
    assert all(line.startswith("::") for line in github.stdout.splitlines())
    assert not any(c in github.stdout for c in raw)

    rows = [line for line in summary.read_text().splitlines() if line.startswith("| evil")]
    assert len(rows) == 2
    for row in rows:
        assert len(re.split(r"(?<!\\)\|", row)) == 8  # six cells: the name's '|' escaped
        assert "<b>" not in row

    report = tmp_path / "report.xml"
    assert run(budgets, "-f", "junit", "--output", str(report)).exit_code == 1
    text = report.read_text(encoding="utf-8")
    assert not re.search("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]", text)  # XML 1.0 characters
    names = {case.get("classname") for case in ET.fromstring(text).iter("testcase")}
    assert names == {"evil\\x1b]0;pwned\\x07\\x1b[2J | <b>x</b> & [/] [bold]\\x0asecond\\u2028line\\x01"}

    data = strict_json(run(budgets, "-f", "json").stdout)
    assert data["results"][0]["name"] == "evil\x1b]0;pwned\x07\x1b[2J | <b>x</b> & [/] [bold]\nsecond\u2028line\x01"


def test_hostile_spec_path_is_escaped(tmp_path, write):
    name = "odd\x1b[2J\n.yaml"
    (tmp_path / name).write_text(SPEC.read_text())
    budgets = write("b.yaml", OVER.replace("model: mobilenet_v1", 'model: "odd\\e[2J\\n.yaml"'))
    for fmt in ("table", "github", "junit"):
        result = run(budgets, "-f", fmt)
        assert result.exit_code == 1, result.stderr
        assert "\x1b" not in result.stdout + result.stderr
    assert "odd\\x1b[2J\\x0a.yaml" in run(budgets).stdout


@pytest.mark.skipif(sys.getfilesystemencoding() != "utf-8", reason="file names as UTF-8 bytes")
def test_a_file_name_that_is_not_utf8_is_written_as_escapes(tmp_path):
    spec = tmp_path / os.fsdecode(b"net\xff.yaml")  # its byte kept as a lone surrogate
    spec.write_text(SPEC.read_text())
    report, summary = tmp_path / "report.txt", tmp_path / "summary.md"
    result = run("--model", str(spec), "--max-madds", "1M", "--output", str(report),
                 env={"GITHUB_STEP_SUMMARY": str(summary)})
    assert result.exit_code == 1, result.stderr
    assert "net\\udcff.yaml α 1.0 224×224" in report.read_text(encoding="utf-8")
    # in Markdown the escape's backslash is itself escaped, so that it shows
    assert "net\\\\udcff.yaml | mult-adds |" in summary.read_text(encoding="utf-8")


# --------------------------------------------------------------------------- the gate in CI


def test_github_format_annotates_bad_input(tmp_path, write):
    typo = write("configs/b.yaml", "budgets:\n  - name: a\n    model: mobilenet_v1\n    max_maddz: 1M\n")
    result = run(typo, "-f", "github", env={"GITHUB_WORKSPACE": str(tmp_path)})
    assert result.exit_code == 2
    (annotation,) = result.stdout.splitlines()
    assert annotation.startswith("::error file=configs/b.yaml,line=4,title=mnsize check::")
    assert "max_maddz" in annotation
    (line,) = result.stderr.splitlines()
    assert line.startswith(f"mnsize check: error: {typo}:4: ")
    # a spec that a budget uses: the annotation is at the spec's line
    spec = write("specs/bad.yaml", SPEC.read_text().replace("classes: 1000", "classes: lots", 1))
    broken = write("b2.yaml", "budgets:\n  - name: a\n    model: specs/bad.yaml\n    max_madds: 1G\n")
    result = run(broken, "-f", "github")
    assert result.exit_code == 2
    assert result.stdout.startswith(f"::error file={spec.replace(':', '%3A').replace(',', '%2C')},line=")
    # found while reading the options, before the command runs
    for args in (["--max-madds", "1M", "--max-growth", "5"], ["--max-madds", "1M", "--alpha", "x"]):
        result = run(*args, "-f", "github")
        assert result.exit_code == 2 and result.stdout.startswith("::error title=mnsize check::")


def test_json_format_reports_a_tool_error(write, tmp_path):
    typo = write("b.yaml", "budgets:\n  - name: a\n    model: mobilenet_v1\n    max_maddz: 1M\n")
    result = run(typo, "-f", "json")
    assert result.exit_code == 2
    data = strict_json(result.stdout)
    assert data == {"schema": "mnsize.check/1", "passed": False,
                    "error": {"message": result.stderr.strip().split(": error: ", 1)[1], "file": typo, "line": 4}}
    for args in (["--max-madds", "1M", "--max-growth", "5"], ["--format=json", "--alpha", "0"],
                 ["--max-madds", "1M", "--output", str(tmp_path)], ["--baseline", "missing.json", "--max-madds", "1M"]):
        result = run(*args, *([] if "--format=json" in args else ["-f", "json"]))
        assert result.exit_code == 2
        error = strict_json(result.stdout)["error"]
        assert error["message"] and error["message"] in result.stderr


def test_annotation_paths_are_relative_to_the_workspace(tmp_path, write):
    budgets = write("repo/configs/b.yaml", OVER)
    inside = run(budgets, "-f", "github", env={"GITHUB_WORKSPACE": str(tmp_path / "repo")}).stdout
    assert "::error file=configs/b.yaml,line=6," in inside
    outside = run(budgets, "-f", "github", env={"GITHUB_WORKSPACE": str(tmp_path / "elsewhere")}).stdout
    assert f"file={budgets}," in outside


@pytest.mark.parametrize("fmt", ["table", "json", "github", "junit"])
def test_the_summary_is_written_whatever_the_format(tmp_path, write, fmt):
    summary = tmp_path / "summary.md"
    result = run(write("b.yaml", OVER), "-f", fmt, env={"GITHUB_STEP_SUMMARY": str(summary)})
    assert result.exit_code == 1
    text = summary.read_text()
    assert text.startswith("### mnsize check: FAILED\n\nFAILED: 2 checks, 1 over budget, 0 warnings.\n")
    assert "| grown | mult-adds | 325,400,448 | 300,000,000 | 108.5% | ❌ FAIL |" in text


def test_results_carry_configuration_and_unit(write, profile):
    budgets = write("b.yaml", "budgets:\n  - name: x\n    model: mobilenet_v1\n    alpha: 0.75\n"
                              "    resolution: [192, 160]\n    dtype: int8\n    max_madds: 1G\n    max_size: 10MB\n"
                              "    max_latency: 1s\n    profile: profile.yaml\n")
    results = strict_json(run(budgets, "-f", "json").stdout)["results"]
    assert [(r["metric"], r["unit"]) for r in results] == [("madds", "count"), ("size", "bytes"),
                                                          ("latency", "microseconds")]
    for r in results:
        assert (r["model"], r["alpha"], r["resolution"], r["dtype"]) == ("mobilenet_v1", 0.75, [192, 160], "int8")


def test_growth_is_counted_apart_and_none_is_allowed_by_default(tmp_path, write):
    baseline = tmp_path / "base.json"
    budgets = write("b.yaml", ROOMY)
    assert run(budgets, "--write-baseline", str(baseline)).exit_code == 0
    assert run(budgets, "--baseline", str(baseline)).exit_code == 0  # unchanged: no growth
    grown = write("b.yaml", ROOMY.replace("alpha: 0.5", "alpha: 0.55"))
    summary = tmp_path / "summary.md"
    result = run(grown, "--baseline", str(baseline), "-f", "json", env={"GITHUB_STEP_SUMMARY": str(summary)})
    assert result.exit_code == 1
    data = strict_json(result.stdout)
    assert (data["checks"], data["failed"], data["over_budget"], data["over_growth"]) == (2, 2, 0, 2)
    madds = data["results"][0]
    assert madds["over_limit"] is False and madds["over_growth"] is True and madds["baseline"] == 149_497_088
    assert madds["growth"] == pytest.approx(100 * (madds["value"] - 149_497_088) / 149_497_088, abs=1e-4)
    assert "(at most 0%)" in madds["reasons"][0]
    verdict = "FAILED: 2 checks, 0 over budget, 2 over the growth limit, 0 warnings."
    assert verdict in summary.read_text()
    table = run(grown, "--baseline", str(baseline))
    assert verdict in table.stdout
    assert table.stderr.startswith("mnsize check: over the growth limit: ")
    assert run(grown, "--baseline", str(baseline), "--max-growth", "25%").exit_code == 0
    help_text = " ".join(run("--help").stdout.split())
    assert "(none allowed without it)" in help_text and "[default: 0%]" in help_text


def test_a_terminal_gets_colours_and_a_table_that_fits(tmp_path, write):
    pty = pytest.importorskip("pty")
    import fcntl
    import struct
    import termios

    budgets = write("b.yaml", OVER.replace("name: grown", "name: phone-backbone") + ROOMY.split("\n", 1)[1])
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 100, 0, 0))
    env = {k: v for k, v in os.environ.items() if k not in ("COLUMNS", "LINES", "NO_COLOR", "FORCE_COLOR")}
    env.update(TERM="xterm-256color", PYTHONUTF8="1", PYTHONPATH=os.pathsep.join(sys.path))
    proc = subprocess.Popen([sys.executable, "-m", "mnsize", "check", budgets], stdin=slave, stdout=slave,
                            stderr=subprocess.PIPE, env=env, cwd=tmp_path)
    os.close(slave)
    chunks = []
    while True:
        try:
            chunk = os.read(master, 65536)
        except OSError:  # the terminal closed
            break
        if not chunk:
            break
        chunks.append(chunk)
    os.close(master)
    assert proc.wait(timeout=60) == 1, proc.stderr.read()
    proc.stderr.close()
    shown = b"".join(chunks).decode("utf-8")
    assert "\x1b[" in shown  # colours
    plain = re.sub(r"\x1b\[[0-9;]*m", "", shown)
    lines = plain.splitlines()
    assert max(len(line) for line in lines) <= 100
    for number in ("325,400,448", "300,000,000", "149,497,088", "400,000,000", "108.5%"):
        assert sum(number in line for line in lines) == 1, number  # whole, on one row
    assert any(line.startswith("phone-backbone: mobilenet_v1 α 0.75 224×224") for line in lines)
    assert any("phone-backbone mult-adds: over the limit" in line for line in lines)


def test_a_wide_terminal_keeps_every_column(monkeypatch):
    import io

    from mnsize.budgets import parse_budgets
    from mnsize.gate import check_budgets as check
    from mnsize.render.check import render_table

    class Terminal(io.StringIO):
        def isatty(self):
            return True

    monkeypatch.setenv("COLUMNS", "200")
    out = Terminal()
    render_table(check(parse_budgets(OVER, "b.yaml")), out)
    text = re.sub(r"\x1b\[[0-9;]*m", "", out.getvalue())
    header = next(line for line in text.splitlines() if "budget" in line and "metric" in line)
    assert [h.strip() for h in re.split("[┃│]", header)[1:-1]] == [
        "budget", "configuration", "metric", "value", "limit", "used", "status", "why"]


# --------------------------------------------------------------------------- schemas


SCHEMAS = resources.files("mnsize") / "schemas"


def schema_of(command: str) -> dict:
    return json.loads((SCHEMAS / f"{command}.schema.json").read_text(encoding="utf-8"))


def _profile_file(tmp_path) -> str:
    from tests.test_latency import SYNTHETIC

    path = tmp_path / "profile.yaml"
    path.write_text(yaml.safe_dump(SYNTHETIC))
    return str(path)


RUNS = {
    "table": [["table", "--alpha", "0.25", "--res", "32"], ["table", "--by-kind"], ["table", "--standard"],
              ["table", "--convention", "ptflops"]],
    "explain": [["explain", "--alpha", "0.5"]],
    "fit": [["fit", "--max-madds", "150M"], ["fit", "--max-madds", "1M"],
            ["fit", "--max-latency", "8ms", "--profile", "{profile}", "--alphas", "0.25,0.5", "--resolutions", "128"]],
    "grid": [["grid"], ["grid", "--metric", "size", "--dtype", "int8"]],
    "check": [["check", "--model", "mobilenet_v1", "--max-madds", "1G", "--max-size", "0"],
              ["check", "--model", "mobilenet_v1", "--max-latency", "1s", "--profile", "{profile}"],
              ["check", "--model", "nope", "--max-madds", "1M"]],
    "verify": [["verify", "--device", "meta", "--alpha", "0.25", "--res", "32"],
               ["verify", "--device", "meta", "--all", "--model", "mobilenet_v1_shallow"]],
    "latency": [["latency", "--profile", "{profile}", "--alpha", "0.5"]],
    "bench": [["bench", "--alpha", "0.25", "--res", "32", "--runs", "3"]],
}


def test_every_schema_is_tested_and_valid():
    from jsonschema import Draft202012Validator

    shipped = sorted(p.name for p in SCHEMAS.iterdir() if p.name.endswith(".schema.json"))
    assert shipped == sorted(f"{command}.schema.json" for command in RUNS)
    for command in RUNS:
        schema = schema_of(command)
        assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
        Draft202012Validator.check_schema(schema)


def test_schemas_ship_in_the_wheel():
    import fnmatch

    tomllib = pytest.importorskip("tomllib")

    config = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    patterns = config["tool"]["setuptools"]["package-data"]["mnsize"]
    assert "mnsize" in config["tool"]["setuptools"]["packages"]
    for command in RUNS:
        assert any(fnmatch.fnmatch(f"schemas/{command}.schema.json", p) for p in patterns)


@pytest.mark.parametrize("command", sorted(RUNS))
def test_schemas(command, tmp_path):
    from jsonschema import Draft202012Validator

    if command in ("verify", "bench"):
        pytest.importorskip("torch", reason=f"{command} needs torch")
    validator = Draft202012Validator(schema_of(command))
    profile = _profile_file(tmp_path)
    for args in RUNS[command]:
        result = CliRunner().invoke(cli, [a.replace("{profile}", profile) for a in args] + ["--format", "json"])
        assert result.exit_code in (0, 1, 2), result.output
        document = strict_json(result.stdout)
        assert next(iter(document)) == "schema" and document["schema"] == f"mnsize.{command}/1", args
        errors = [f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in validator.iter_errors(document)]
        assert errors == [], args


def test_the_check_schema_refuses_what_check_must_not_print():
    from jsonschema import Draft202012Validator

    validator = Draft202012Validator(schema_of("check"))
    good = strict_json(run("--model", "mobilenet_v1", "--max-madds", "1G", "-f", "json").stdout)
    assert validator.is_valid(good)
    for broken in ({**good, "schema": "mnsize.check/2"}, {**good, "passed": "yes"},
                   {**good, "results": [{**good["results"][0], "margin": "inf"}]},
                   {**good, "results": [{**good["results"][0], "unit": "flops"}]},
                   {"schema": "mnsize.check/1", "passed": True, "error": {"message": "x", "file": None, "line": None}}):
        assert not validator.is_valid(broken)


# --------------------------------------------------------------------------- pre-commit and the GitHub Action


def test_pre_commit_hook():
    hooks = yaml.safe_load((ROOT / ".pre-commit-hooks.yaml").read_text(encoding="utf-8"))
    (hook,) = hooks
    assert hook["id"] == "mnsize-check" and hook["name"]
    assert hook["entry"] == "mnsize check"
    assert hook["language"] == "python"  # pre-commit installs this repository: usable by `repo:` URL
    assert hook["pass_filenames"] is False  # the budgets files are named in args, not every changed YAML file
    files = re.compile(hook["files"])
    assert files.search("configs/budgets.yaml") and files.search("specs/net.yml")
    assert not files.search("mnsize/cli.py")
    # what pre-commit runs: the entry, the user's args
    entry = hook["entry"].split()
    assert entry[0] == "mnsize"
    proc = subprocess.run([sys.executable, "-m", "mnsize", *entry[1:], str(ROOT / "configs" / "budgets.yaml")],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr


def _action():
    return yaml.safe_load((ROOT / "action.yml").read_text(encoding="utf-8"))


def test_action_syntax():
    action = _action()
    assert action["name"] and action["description"]
    inputs = action["inputs"]
    assert inputs["budgets"]["required"] is True
    assert inputs["format"]["default"] == "github"
    assert {"python-version", "mnsize-version", "args"} <= set(inputs)
    assert action["runs"]["using"] == "composite"
    steps = action["runs"]["steps"]
    setup = next(s for s in steps if "uses" in s)
    assert setup["uses"].startswith("actions/setup-python@")
    assert setup["with"]["python-version"] == "${{ inputs.python-version }}"
    runs = [s for s in steps if "run" in s]
    assert all(s["shell"] == "bash" for s in runs)
    for step in runs:  # inputs reach scripts through the environment, never pasted into the code
        assert "${{" not in step["run"]
    install, gate = runs
    assert "pip install" in install["run"] and "torch" not in install["run"]
    assert install["env"]["MNSIZE_VERSION"] == "${{ inputs.mnsize-version }}"
    assert "mnsize check $BUDGETS --format \"$FORMAT\" $ARGS" in gate["run"]
    assert gate["env"] == {"BUDGETS": "${{ inputs.budgets }}", "FORMAT": "${{ inputs.format }}",
                           "ARGS": "${{ inputs.args }}"}


def test_action_check_step_runs(tmp_path, write):
    """The Action's check step, run as the runner would (bash, the inputs in
    its environment), with this Python as the one set up."""
    gate = [s for s in _action()["runs"]["steps"] if "run" in s][-1]
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "python").write_text(f'#!/bin/sh\nexec "{sys.executable}" "$@"\n')
    (bin_dir / "python").chmod(0o755)
    roomy, over = write("a.yaml", ROOMY), write("b.yaml", OVER)
    env = {**os.environ, "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}",
           "PYTHONPATH": os.pathsep.join(sys.path), "FORMAT": "json"}
    env.pop("GITHUB_STEP_SUMMARY", None)

    def step(budgets: str, args: str = "") -> subprocess.CompletedProcess:
        return subprocess.run(["bash", "-e", "-c", gate["run"]], env={**env, "BUDGETS": budgets, "ARGS": args},
                              capture_output=True, text=True, timeout=60)

    ok = step(roomy)
    assert ok.returncode == 0, ok.stderr
    assert [r["name"] for r in strict_json(ok.stdout)["results"]] == ["phone", "phone"]
    both = step(f"{roomy}\n{over}", "--warn-at 10%")  # two files on two lines; args split into words
    assert both.returncode == 2 and "not both" in both.stderr  # --warn-at is for an ad hoc budget: it arrived
    both = step(f"{roomy}\n{over}")
    assert both.returncode == 1 and strict_json(both.stdout)["over_budget"] == 1
