"""What mnsize prints, wherever it prints it: tool errors as one line with exit
status 2, output encodings that cannot show ×, α and ·, strict JSON with a
schema name, user text that cannot steer the terminal, and tables that fit a
100-column terminal without cutting a number."""

from __future__ import annotations

import io
import json
import os
import re
import subprocess
import sys
from fractions import Fraction
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from mnsize.cli import cli
from mnsize.latency import PROFILE_FORMAT, model_features

ROOT = Path(__file__).resolve().parent.parent
BUDGETS = str(ROOT / "configs" / "budgets.yaml")
HUGE = "1" + "0" * 5000  # past Python's 4,300-digit int() limit


def run(*args: str, env: dict | None = None):
    return CliRunner(env=env).invoke(cli, list(args))


def mnsize(*args: str, env: dict | None = None, **kwargs) -> subprocess.CompletedProcess:
    """mnsize in a process of its own, as `python -m mnsize` (PYTHONPATH decides which)."""
    return subprocess.run([sys.executable, "-m", "mnsize", *args], capture_output=True, env=env, timeout=60,
                          **kwargs)


def one_line_error(stderr: str, command: str) -> str:
    lines = stderr.splitlines()
    assert len(lines) == 1, stderr
    assert lines[0].startswith(f"mnsize {command}".strip() + ": error: "), stderr
    assert "Traceback" not in stderr
    return lines[0]


def strict_json(text: str) -> dict:
    """Parse as RFC 8259 JSON: NaN and Infinity are not JSON."""
    def refuse(constant):
        raise AssertionError(f"not JSON: {constant}")

    return json.loads(text, parse_constant=refuse)


def spec_named(tmp_path: Path, name: str) -> str:
    path = tmp_path / "named.yaml"
    path.write_text(yaml.safe_dump({
        "name": name, "title": name, "source": "test", "input": {"channels": 3, "resolution": 32},
        "width": {"rule": "floor"}, "classes": 10,
        "layers": [{"kind": "conv", "out": 8, "kernel": 3, "stride": 2}, {"kind": "dw", "kernel": 3},
                   {"kind": "pw", "out": 16}, {"kind": "avgpool"}, {"kind": "fc"}]}), encoding="utf-8")
    return str(path)


# --------------------------------------------------------------------------- tool errors


@pytest.mark.parametrize("args", [["table"], ["table", "-f", "json"], ["table", "--res", "3000", "-f", "csv"],
                                  ["--help"], []])
def test_a_full_stdout_is_one_line_and_exit_2(args):
    with open("/dev/full", "w") as full:
        proc = subprocess.run([sys.executable, "-m", "mnsize", *args], stdout=full, stderr=subprocess.PIPE,
                              text=True, timeout=60)
    assert proc.returncode == 2
    # nothing from Python's own flush at exit either ("Exception ignored ...")
    line = one_line_error(proc.stderr, "table" if args[:1] == ["table"] else "")
    assert line.endswith("cannot write to stdout: No space left on device")


def test_a_closed_stdout_is_one_line_and_exit_2():
    def closed(*args):
        return subprocess.run([sys.executable, "-m", "mnsize", *args], stderr=subprocess.PIPE, text=True,
                              timeout=60, preexec_fn=lambda: os.close(1))

    proc = closed("table")
    assert proc.returncode == 2
    assert "cannot write to stdout" in one_line_error(proc.stderr, "table")
    proc = closed("table", "--alpha", "0")  # an error of its own is still the one reported
    assert proc.returncode == 2 and "--alpha" in one_line_error(proc.stderr, "table")


@pytest.mark.parametrize("raised,fragment", [
    (MemoryError(), "error: out of memory"),
    (RecursionError("maximum recursion depth exceeded"), "error: the input is nested too deeply"),
    (ValueError("Exceeds the limit (4300 digits) for integer string conversion"), "more digits than Python"),
    (RuntimeError("a bug"), "error: internal error: RuntimeError: a bug"),
])
def test_unexpected_exceptions_are_one_line_and_exit_2(monkeypatch, raised, fragment):
    def count(*args, **kwargs):
        raise raised

    monkeypatch.delenv("MNSIZE_DEBUG", raising=False)
    monkeypatch.setattr("mnsize.costs.count", count)
    result = run("table")
    assert result.exit_code == 2
    assert fragment in one_line_error(result.stderr, "table")
    # a bug, and only a bug, goes through with its traceback for mnsize's own tests
    debug = run("table", env={"MNSIZE_DEBUG": "1"})
    if "internal error" in fragment:
        assert debug.exception is raised
    else:
        assert debug.exit_code == 2 and fragment in debug.stderr


@pytest.mark.parametrize("args,option", [
    (["table", "--res", HUGE], "--res"),
    (["table", "--res", f"224x{HUGE}"], "--res"),
    (["table", "--classes", HUGE], "--classes"),
    (["table", "--rho", HUGE], "--rho"),
    (["bench", "--runs", HUGE], "--runs"),
    (["bench", "--threads", HUGE], "--threads"),
    (["bench", "--batch", HUGE], "--batch"),
    (["fit", "--max-madds", "150M", "--top", HUGE], "--top"),
])
def test_numbers_past_the_digit_limit_are_short_one_line_errors(args, option):
    result = run(*args)
    assert result.exit_code == 2
    line = one_line_error(result.stderr, args[0])
    assert option in line and len(line) < 300


def test_the_digit_limit_through_a_real_process():
    proc = mnsize("table", "--res", HUGE, text=True)
    assert proc.returncode == 2 and proc.stdout == ""
    assert "--res" in one_line_error(proc.stderr, "table")


# --------------------------------------------------------------------------- options


@pytest.mark.parametrize("args,option", [
    (["--classes", "1000001"], "--classes"),
    (["--classes", "1_0"], "--classes"),
    (["--rho", "1_0"], "--rho"),
    (["--rho", "1/2"], "--rho"),
])
def test_options_refuse_what_files_refuse(args, option):
    result = run("table", *args)
    assert result.exit_code == 2
    assert option in one_line_error(result.stderr, "table")


def test_classes_as_many_as_a_file_allows():
    refused = run("table", "--classes", "1000001")
    assert refused.exit_code == 2 and "1 to 1,000,000" in one_line_error(refused.stderr, "table")
    data = strict_json(run("table", "--classes", "1000000", "--rho", "0.5", "-f", "json").stdout)
    assert data["classes"] == 1_000_000 and data["resolution"] == [112, 112]
    assert data["layers"][-1]["params"] == 1024 * 1_000_000 + 1_000_000


# --------------------------------------------------------------------------- encodings


def _env(**changes: str) -> dict:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONIOENCODING", "PYTHONUTF8", "LC_ALL", "LANG",
                                                             "LC_CTYPE", "COLUMNS")}
    env["PYTHONPATH"] = os.pathsep.join(sys.path)
    env.update(changes)
    return env


ENCODINGS = {
    "ascii": ("ascii", _env(PYTHONIOENCODING="ascii")),
    "cp1252": ("cp1252", _env(PYTHONIOENCODING="cp1252")),
    "posix": ("ascii", _env(LC_ALL="POSIX", PYTHONUTF8="0")),
}
COMMANDS = {
    "table": ["table"],
    "check": ["check", BUDGETS],
    "fit": ["fit", "--max-madds", "150M", "--alphas", "0.5,1.0", "--resolutions", "224,128"],
    "grid": ["grid"],
}


@pytest.mark.parametrize("command", sorted(COMMANDS))
@pytest.mark.parametrize("where", sorted(ENCODINGS))
def test_an_output_that_cannot_show_unicode_gets_ascii(where, command):
    encoding, env = ENCODINGS[where]
    proc = mnsize(*COMMANDS[command], env=env)
    assert proc.returncode == 0, proc.stderr.decode(errors="replace")
    assert proc.stderr == b""
    text = proc.stdout.decode(encoding)  # every byte in the output's own encoding
    assert "alpha" in text and "α" not in text
    if encoding == "ascii":
        assert proc.stdout.isascii()
    # each table was laid out with the characters it was printed with
    tables = re.findall(r"(?:^[|+].*\n)+", text, re.MULTILINE)
    assert tables, text
    for table in tables:
        assert len({len(line) for line in table.splitlines()}) == 1, table


# --------------------------------------------------------------------------- JSON


def profile(tmp_path: Path, cpu: str = "test cpu") -> str:
    path = tmp_path / "profile.yaml"
    path.write_text(yaml.safe_dump({
        "format": PROFILE_FORMAT, "written_by": "mnsize profile",
        "device": {"cpu": cpu, "threads": 1, "torch": "none", "date": "2026-11-21"},
        "model": {"ms_per": {name: 1e-6 for name in model_features(True)}, "offset_ms": 0.5, "lanes": 16}}),
        encoding="utf-8")
    return str(path)


def json_documents(tmp_path: Path) -> dict[str, list[str]]:
    return {
        "mnsize.table/1": [["table"], ["table", "--by-kind"], ["table", "--standard"]],
        "mnsize.explain/1": [["explain"]],
        "mnsize.fit/1": [["fit", "--max-madds", "150M"], ["fit", "--max-madds", "1"]],
        "mnsize.grid/1": [["grid"]],
        "mnsize.latency/1": [["latency", "--profile", profile(tmp_path)]],
    }


def test_every_json_document_is_strict_and_names_its_schema(tmp_path):
    for schema, commands in json_documents(tmp_path).items():
        for args in commands:
            result = run(*args, "-f", "json")
            assert result.exit_code in (0, 1), (args, result.stderr)
            data = strict_json(result.stdout)
            assert next(iter(data)) == "schema" and data["schema"] == schema, args


@pytest.mark.parametrize("args", [["verify", "--alpha", "0.25", "--res", "64"], ["verify", "--all", "--model",
                                                                                "mobilenet_v1_shallow"],
                                  ["bench", "--alpha", "0.25", "--res", "32", "--runs", "2"]])
def test_torch_commands_json_names_its_schema(args):
    pytest.importorskip("torch", reason=f"{args[0]} needs torch")
    result = run(*args, "-f", "json")
    assert result.exit_code == 0, result.stderr
    data = strict_json(result.stdout)
    assert next(iter(data)) == "schema" and data["schema"] == f"mnsize.{args[0]}/1"


def test_shares_of_nothing_are_null_not_a_number(tmp_path):
    path = tmp_path / "free.yaml"
    path.write_text("name: free\nsource: test\ninput: {channels: 3, resolution: 8}\nwidth: {rule: floor}\n"
                    "classes: 10\nlayers:\n  - {kind: avgpool}\n")
    data = strict_json(run("table", "--model", str(path), "--by-kind", "-f", "json").stdout)
    assert data["totals"] == {"madds": 0, "params": 0, "bn_params": 0}
    assert [(k["madds_pct"], k["params_pct"]) for k in data["by_kind"]] == [(None, None)]


def test_json_never_holds_nan_or_infinity():
    from mnsize.render.base import dump_json

    out = io.StringIO()
    dump_json({"schema": "x", "value": 1}, out)
    assert strict_json(out.getvalue()) == {"schema": "x", "value": 1}
    for bad in (float("nan"), float("inf")):
        with pytest.raises(ValueError):
            dump_json({"value": bad}, io.StringIO())


# --------------------------------------------------------------------------- user text


HOSTILE = "[/]x[bold]y\x1b]0;owned\x07|<b>\nz"


def test_a_hostile_spec_name_in_the_table(tmp_path):
    result = run("table", "--model", spec_named(tmp_path, HOSTILE))
    assert result.exit_code == 0, result.stderr
    assert "\x1b" not in result.stdout and "\x07" not in result.stdout
    title = result.stdout.splitlines()[0]
    assert title.startswith("[/]x[bold]y\\x1b]0;owned\\x07|<b>\\x0az ")  # shown as written, never styled


def test_a_hostile_spec_name_in_markdown(tmp_path):
    result = run("table", "--model", spec_named(tmp_path, HOSTILE), "-f", "markdown")
    assert result.exit_code == 0, result.stderr
    title = result.stdout.splitlines()[0]
    assert title.startswith("**\\[/\\]x\\[bold\\]y") and title.endswith("**")
    assert "\\|\\<b\\>" in title and "\x1b" not in result.stdout
    rows = [line for line in result.stdout.splitlines() if line.startswith("| ")]
    assert len(rows) == 1 + 5 + 1 and len({line.count(" | ") for line in rows}) == 1  # no row split by the name


@pytest.mark.parametrize("name", ["[/]", "[bold]strong[/bold]"])
def test_rich_markup_in_a_name_is_text(tmp_path, name):
    path = spec_named(tmp_path, name)
    for args in (["table"], ["table", "--standard"], ["explain"], ["fit", "--max-madds", "1G"],
                 ["fit", "--max-madds", "1"]):
        result = run(*args, "--model", path)
        assert result.exit_code in (0, 1), (args, result.stderr)
        assert "Traceback" not in result.stderr
        assert name in result.stdout, args


def test_a_hostile_device_string_in_a_profile(tmp_path):
    result = run("latency", "--profile", profile(tmp_path, cpu="cpu\x1b[2J\x1b]0;owned\x07"), "--alpha", "0.25")
    assert result.exit_code == 0, result.stderr
    assert "\x1b" not in result.stdout and "cpu\\x1b[2J" in result.stdout


def test_an_error_message_is_one_escaped_line(tmp_path):
    result = run("table", "--model", str(tmp_path / "x\x1b]0;owned\x07\ny.yaml"))
    assert result.exit_code == 2
    line = one_line_error(result.stderr, "table")
    assert "\x1b" not in line and "\x07" not in line and "\\x1b]0;owned\\x07" in line


# --------------------------------------------------------------------------- terminal width


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


ANSI = re.compile(r"\x1b\[[0-9;]*m")


def on_terminal(monkeypatch, columns: int, render) -> str:
    monkeypatch.setenv("COLUMNS", str(columns))
    out = Terminal()
    render(out)
    return ANSI.sub("", out.getvalue())


def _report(alpha="1.0", resolution=224):
    from mnsize import count, expand, load_spec
    from mnsize.expand import Config

    spec = load_spec("mobilenet_v1")
    layers = expand(spec, alpha, resolution)
    return Config(spec.name, Fraction(alpha), (resolution, resolution), spec.classes), count(layers)


@pytest.mark.parametrize("view", ["layers", "standard"])
def test_table_fits_100_columns_and_cuts_no_number(monkeypatch, view):
    from mnsize.render.report import render_report

    config, report = _report()
    text = on_terminal(monkeypatch, 100, lambda out: render_report(config, report, view, "table", out))
    table = [line for line in text.splitlines() if line[:1] in "┏┃┡│├└"]
    assert table and max(len(line) for line in table) <= 100
    assert "…" not in text
    for row in report.rows if view == "layers" else ():
        assert f"{row.madds:,}" in text and f"{row.params:,}" in text
    assert f"{report.madds:,}" in text
    assert view == "standard" or f"{report.params:,}" in text
    # piped, the table keeps every column
    out = io.StringIO()
    render_report(config, report, view, "table", out)
    header = next(line for line in out.getvalue().splitlines() if "kernel/s" in line)
    assert ("in+out" in header and "% madds" in header) if view == "layers" else "1/N + 1/K²" in header


def on_a_tty(args: list[str], columns: int) -> tuple[int, str]:
    """mnsize with its stdout a terminal of ``columns`` columns: (status, text)."""
    import pty

    leader, follower = pty.openpty()
    env = _env(COLUMNS=str(columns), TERM="xterm")
    proc = subprocess.Popen([sys.executable, "-m", "mnsize", *args], stdout=follower, stderr=subprocess.DEVNULL,
                            env=env)
    os.close(follower)
    chunks = []
    while True:  # read as it is written: a terminal holds only a few KiB
        try:
            chunk = os.read(leader, 65536)
        except OSError:  # the other end closed
            break
        if not chunk:
            break
        chunks.append(chunk)
    os.close(leader)
    status = proc.wait(timeout=60)
    return status, ANSI.sub("", b"".join(chunks).decode().replace("\r\n", "\n"))


@pytest.mark.parametrize("args", [["explain"], ["fit", "--max-madds", "150M", "--profile", "PROFILE"],
                                  ["grid", "--resolutions", "224,192,160,128,96,64,32"]])
def test_other_tables_fit_a_100_column_terminal(tmp_path, args):
    args = [profile(tmp_path) if arg == "PROFILE" else arg for arg in args]
    status, text = on_a_tty(args, 100)
    assert status == 0, text
    lines = [line for line in text.splitlines() if line[:1] in "┏┃┡│├└"]
    assert lines and max(len(line) for line in lines) <= 100, text
    assert "…" not in text


def test_optional_columns_go_in_order(monkeypatch):
    from mnsize.render.base import Grid, write_grid

    # widths: name 4, why 27, value 13, extra 5; each column 3 more, the table 1 more
    grid = Grid(title="t", headers=["name", "why", "value", "extra"], right={2, 3},
                rows=[["a", "one two three four five six", "1,234,567,890", "9,999"]], csv_headers=[],
                csv_rows=[], optional=[3, 1])
    shown = lambda columns: on_terminal(monkeypatch, columns, lambda out: write_grid(grid, "table", out))  # noqa
    assert "extra" in shown(62) and "why" in shown(62)
    assert "extra" not in shown(61) and "why" in shown(61) and "six" in shown(54)
    assert "why" not in shown(53) and "1,234,567,890" in shown(53)


def test_text_wraps_before_a_number_is_cut(monkeypatch):
    from mnsize.render.base import Grid, write_grid

    grid = Grid(title="t", headers=["name", "why", "value"], right={2},
                rows=[["a", "one two three four five six", "1,234,567,890"]], csv_headers=[], csv_rows=[])
    shown = lambda columns: on_terminal(monkeypatch, columns, lambda out: write_grid(grid, "table", out))  # noqa
    wrapped = shown(34)
    assert max(len(line) for line in wrapped.splitlines()) <= 34
    assert "1,234,567,890" in wrapped and "six" in wrapped and "…" not in wrapped
    too_narrow = shown(20)  # wider than the terminal rather than a number cut
    assert "1,234,567,890" in too_narrow and "one two three four five six" in too_narrow
