"""Every `$ mnsize ...` example in the README and docs/ is real: each command
runs and prints exactly the lines shown, and the JSON shown is what the
command writes.

An example may leave lines out where it says so: a line `...` or a table row
whose first cell is `..` stands for lines of the real output that are not
shown. Between those, the lines shown must be the real output's lines, in
order and none missing; an example that does not start (or end) with such a
marker shows the output from its first (to its last) line.
"""

from __future__ import annotations

import json
import re
import shlex
from pathlib import Path

import pytest
from click.testing import CliRunner

ROOT = Path(__file__).resolve().parent.parent
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
COLUMNS = "200"  # wide enough that no table in the docs wraps
ENV = {"COLUMNS": COLUMNS, "LINES": None, "NO_COLOR": None, "FORCE_COLOR": None, "TERM": None,
       "GITHUB_STEP_SUMMARY": None, "GITHUB_WORKSPACE": None, "GITHUB_ACTIONS": None}
ELIDED = re.compile(r"^(\.\.\.|│ *\.\. *│.*)$")

# The spec behind the error example `mnsize table --model my.yaml`: line 9 is
# layer 3, a dwsep with a negative stride.
MY_YAML = """\
name: my
source: an example with a mistake
input: {channels: 3, resolution: 224}
width: floor
classes: 1000
layers:
  - {kind: conv, kernel: 3, out: 32, stride: 2}
  - {kind: dwsep, out: 64}
  - {kind: dwsep, out: 128, stride: -1}
"""


def fenced_blocks(path: Path) -> list[tuple[str, str]]:
    """(language, text) of every fenced block, indented ones (in lists) dedented."""
    blocks, lines = [], path.read_text(encoding="utf-8").splitlines()
    i = 0
    while i < len(lines):
        opening = re.match(r"^( *)```(\w*)$", lines[i])
        if not opening:
            i += 1
            continue
        indent, language = len(opening.group(1)), opening.group(2)
        body = []
        i += 1
        while lines[i].strip() != "```":
            body.append(lines[i][indent:])
            i += 1
        blocks.append((language, "\n".join(body)))
        i += 1
    return blocks


def examples() -> list:
    found = []
    for page in PAGES:
        for language, text in fenced_blocks(page):
            if language or not text.startswith("$ mnsize "):
                continue
            command, shown = None, []
            for line in text.splitlines() + ["$ end"]:
                if line.startswith("$ "):
                    if command is not None:
                        found.append(pytest.param(command, shown, id=f"{page.name}: {command}"))
                    command, shown = line[2:], []
                else:
                    shown.append(line.rstrip())
    return found


EXAMPLES = examples()


_EXPORTS: dict[str, bytes] = {}


def exported_v2() -> bytes:
    """docs/real-models.md's mobilenet_v2.onnx: the built-in MobileNetV2 built in
    PyTorch and exported by torch.onnx.export in eval mode (once per run)."""
    if "v2" not in _EXPORTS:
        import io
        import warnings

        torch = pytest.importorskip("torch")
        from mnsize.nn import build_model

        buffer = io.BytesIO()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            torch.onnx.export(build_model("mobilenet_v2").eval(), (torch.zeros(1, 3, 224, 224),), buffer,
                              dynamo=False)
        _EXPORTS["v2"] = buffer.getvalue()
    return _EXPORTS["v2"]


def run(argv: list[str], tmp_path, monkeypatch) -> str:
    from mnsize.cli import cli

    monkeypatch.chdir(tmp_path)
    (tmp_path / "configs").symlink_to(ROOT / "configs")
    (tmp_path / "my.yaml").write_text(MY_YAML, encoding="utf-8")
    if "mobilenet_v2.onnx" in argv:
        (tmp_path / "mobilenet_v2.onnx").write_bytes(exported_v2())
    monkeypatch.setenv("COLUMNS", COLUMNS)
    result = CliRunner(env=ENV).invoke(cli, argv, prog_name="mnsize")
    return result.output


def segments(shown: list[str]) -> tuple[list[list[str]], bool, bool]:
    """The runs of lines between elision markers, and whether the example is
    cut at its start and at its end."""
    runs, current = [], []
    for line in shown:
        if ELIDED.match(line):
            runs.append(current)
            current = []
        else:
            current.append(line)
    runs.append(current)
    cut_start, cut_end = not runs[0], not runs[-1]
    return [r for r in runs if r], cut_start, cut_end


def find(lines: list[str], run_: list[str], start: int) -> int:
    for i in range(start, len(lines) - len(run_) + 1):
        if lines[i:i + len(run_)] == run_:
            return i
    return -1


def test_the_docs_have_examples():
    commands = [p.values[0] for p in EXAMPLES]
    for command in ("mnsize table --alpha 0.5 --res 128", "mnsize fit --max-madds 150M",
                    "mnsize check configs/budgets.yaml", "mnsize verify --alpha 0.5 --res 160",
                    "mnsize explain", "mnsize table --by-kind"):
        assert command in commands


@pytest.mark.parametrize("command, shown", EXAMPLES)
def test_example_output_is_real(command, shown, tmp_path, monkeypatch):
    argv = shlex.split(command)[1:]
    if argv[0] in ("verify", "bench", "profile"):
        pytest.importorskip("torch", reason=f"mnsize {argv[0]} needs torch")
    actual = [line.rstrip() for line in run(argv, tmp_path, monkeypatch).splitlines()]
    runs, cut_start, cut_end = segments(shown)
    assert runs, f"{command}: the example shows no output"
    at = 0
    for n, run_ in enumerate(runs):
        found = find(actual, run_, at)
        assert found >= 0, (f"{command}: these lines are not in its output:\n" + "\n".join(run_)
                            + "\n--- real output:\n" + "\n".join(actual))
        if n == 0 and not cut_start:
            assert found == 0, f"{command}: the example does not show the output's first lines"
        at = found + len(run_)
    if not cut_end:
        assert at == len(actual), f"{command}: the example does not show the output's last lines"


def json_examples() -> list[tuple[Path, dict]]:
    found = []
    for page in PAGES:
        for language, text in fenced_blocks(page):
            if language == "json" and '"schema": "mnsize.' in text:
                found.append((page, json.loads(re.sub(r",\s*\.\.\.\s*\]", "]", text))))
    return found


def contained(shown, real, where="") -> None:
    """Every key and value shown is in the real document (lists: the elements shown, from the first)."""
    if isinstance(shown, dict):
        assert isinstance(real, dict), where
        for key, value in shown.items():
            assert key in real, f"{where}.{key} is not in the real output"
            contained(value, real[key], f"{where}.{key}")
    elif isinstance(shown, list):
        assert isinstance(real, list) and len(real) >= len(shown), where
        for i, value in enumerate(shown):
            contained(value, real[i], f"{where}[{i}]")
    else:
        assert shown == real, f"{where}: the example shows {shown!r}, the command writes {real!r}"


def test_json_examples_are_what_the_command_writes(tmp_path, monkeypatch):
    shown = json_examples()
    assert [doc["schema"] for _, doc in shown] == ["mnsize.table/1"]
    for _, doc in shown:
        height, width = doc["resolution"]
        argv = ["table", "--model", doc["model"], "--alpha", str(doc["alpha"]), "--res", f"{height}x{width}",
                "--classes", str(doc["classes"]), "--convention", doc["convention"], "--format", "json"]
        contained(doc, json.loads(run(argv, tmp_path, monkeypatch)))


def described_documents() -> list[tuple[str, list[str]]]:
    """The inline `{"schema": "mnsize.X/1", "key", ...}` descriptions of docs/cli.md: the command and keys."""
    text = (ROOT / "docs" / "cli.md").read_text(encoding="utf-8")
    found = []
    for span in re.findall(r'`(\{"schema": "mnsize\.\w+/1"[^`]*)`', text):
        command = re.match(r'\{"schema": "mnsize\.(\w+)/1"', span).group(1)
        found.append((command, sorted(set(re.findall(r'"([a-z][a-z0-9_]*)"', span)))))
    return found


def test_every_command_with_json_is_described():
    described = {command for command, _ in described_documents()} | {"table"}
    schemas = {p.name.split(".")[0] for p in (ROOT / "mnsize" / "schemas").glob("*.schema.json")}
    assert described == schemas


@pytest.mark.parametrize("command, keys", described_documents(), ids=[c for c, _ in described_documents()])
def test_described_json_keys_are_in_the_schema(command, keys):
    schema = (ROOT / "mnsize" / "schemas" / f"{command}.schema.json").read_text(encoding="utf-8")
    missing = [key for key in keys if f'"{key}"' not in schema]
    assert not missing, f"docs/cli.md describes keys of mnsize {command}'s JSON that its schema lacks: {missing}"
