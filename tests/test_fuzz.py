"""Hardening: generated and adversarial input to every command and loader.

Every input gets either a result (exit 0, or 1 for a failed check) or exactly
one line on stderr with exit status 2: never a traceback, never a file
written, never a YAML tag executed. The timing bound (each refusal well under
a second) is measured by benchmarks/fuzz_speed.py, not asserted here.
"""

from __future__ import annotations

import copy
import json
import os
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mnsize.cli import cli

ROOT = Path(__file__).resolve().parent.parent
V1 = yaml.safe_load((ROOT / "configs" / "mobilenet_v1.yaml").read_text())
V3 = yaml.safe_load((ROOT / "configs" / "mobilenet_v3_small.yaml").read_text())
BUDGETS = yaml.safe_load((ROOT / "configs" / "budgets.yaml").read_text())
EXAMPLES = 300  # per generated test below (4 tests); docs/robustness.md states the total

KEYS = ["name", "title", "source", "input", "width", "classes", "activation", "layers", "kind", "out", "kernel",
        "stride", "repeat", "scale", "bn", "act", "bias", "t", "expand", "se", "p", "channels", "resolution",
        "rule", "min", "divisor", "budgets", "model", "alpha", "max_madds", "max_params", "max_size",
        "max_activations", "dtype", "warn_at", "padding", "framework", "arithmetic", "truncate", "expansions"]
scalars = st.one_of(
    st.none(), st.booleans(), st.integers(min_value=-10**30, max_value=10**30),
    st.floats(allow_nan=True, allow_infinity=True), st.text(max_size=30),
    st.sampled_from(["conv", "dw", "pw", "dwsep", "inverted_residual", "avgpool", "fc", "dropout", "floor",
                     "divisible", "relu", "up", "150M", "2MB", "90%", "mobilenet_v1", "fp32", "int8", "-1", "1e400",
                     "same", "float", "exact", "nearest", "rule", "keras", "mobilenet_v1_keras"]))
documents = st.recursive(
    scalars,
    lambda inner: st.one_of(st.lists(inner, max_size=6),
                            st.dictionaries(st.one_of(st.sampled_from(KEYS), st.text(max_size=8)), inner, max_size=6)),
    max_leaves=40)


def mutate(document, data, junk):
    """Replace one value somewhere inside a valid document with junk."""
    doc = copy.deepcopy(document)
    node = doc
    for _ in range(data.draw(st.integers(1, 4))):
        if isinstance(node, dict) and node:
            key = data.draw(st.sampled_from(sorted(node, key=str)))
            if not isinstance(node[key], (dict, list)) or data.draw(st.booleans()):
                node[key] = junk
                return doc
            node = node[key]
        elif isinstance(node, list) and node:
            index = data.draw(st.integers(0, len(node) - 1))
            if not isinstance(node[index], (dict, list)) or data.draw(st.booleans()):
                node[index] = junk
                return doc
            node = node[index]
    return doc


def assert_clean(result, folder: Path, allowed: set[str]):
    """Exit 0 or 1 with output, or exit 2 with one line on stderr; no traceback, no file written."""
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception
    assert result.exit_code in (0, 1, 2), result.exit_code
    assert "Traceback" not in result.stderr
    assert "internal error" not in result.stderr
    if result.exit_code == 2:
        assert result.stdout == ""
        lines = result.stderr.splitlines()
        assert len(lines) == 1 and ": error: " in lines[0], result.stderr
        assert len(lines[0]) < 600
    assert {p.name for p in folder.iterdir()} <= allowed


def run_in(folder: Path, args: list[str]):
    cwd = os.getcwd()
    os.chdir(folder)
    try:
        return CliRunner().invoke(cli, args)
    finally:
        os.chdir(cwd)


def write(folder: Path, name: str, content) -> Path:
    path = folder / name
    if isinstance(content, bytes):
        path.write_bytes(content)
    elif isinstance(content, str):
        path.write_text(content)
    else:
        path.write_text(yaml.safe_dump(content, allow_unicode=True))
    return path


settings_ = settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck))


@settings_
@given(document=documents)
def test_random_spec_documents(tmp_path_factory, document):
    folder = tmp_path_factory.mktemp("spec")
    write(folder, "spec.yaml", document)
    assert_clean(run_in(folder, ["table", "--model", "spec.yaml", "-f", "json"]), folder, {"spec.yaml"})


@settings_
@given(data=st.data(), junk=documents, base=st.sampled_from([V1, V3]))
def test_mutated_specs(tmp_path_factory, data, junk, base):
    folder = tmp_path_factory.mktemp("mutant")
    write(folder, "spec.yaml", mutate(base, data, junk))
    result = run_in(folder, ["table", "--model", "spec.yaml", "-f", "json"])
    assert_clean(result, folder, {"spec.yaml"})
    if result.exit_code == 0:
        totals = json.loads(result.stdout)["totals"]
        assert all(isinstance(v, int) and v >= 0 for v in totals.values())


@settings_
@given(data=st.data(), junk=documents)
def test_mutated_budgets(tmp_path_factory, data, junk):
    folder = tmp_path_factory.mktemp("budgets")
    write(folder, "budgets.yaml", mutate(BUDGETS, data, junk))
    assert_clean(run_in(folder, ["check", "budgets.yaml", "--output", "report.txt"]), folder,
                 {"budgets.yaml", "report.txt"})


OPTIONS = ["--model", "--alpha", "--res", "--rho", "--classes", "--format", "--by-kind", "--standard", "--alphas",
           "--resolutions", "--metric", "--dtype", "--max-madds", "--max-params", "--max-size", "--max-activations",
           "--objective", "--top", "--convention", "--warn-at", "--baseline", "--max-growth", "-f", "-m", "-a", "-r"]
VALUES = ["mobilenet_v1", "mobilenet_v3_small", "nope", "0.5", "0", "-1", "nan", "inf", "1e400", "224", "320x240",
          "0x0", "abc", "json", "csv", "table", "markdown", "github", "150M", "2MB", "150X", "", "1:0:0.1",
          "0.25:1:0.25", "96:224:64", "90%", "5", "fp16", "thop", "top1", "size", "x.yaml", "../", "\x00", "é"]
commands = st.sampled_from(["table", "grid", "fit", "check", "explain", "plot", "models", "latency", "nonsense"])
tokens = st.lists(st.one_of(st.sampled_from(OPTIONS), st.sampled_from(VALUES), st.text(max_size=12)), max_size=8)


@settings_
@given(command=commands, args=tokens)
def test_random_command_lines(tmp_path_factory, command, args):
    folder = tmp_path_factory.mktemp("cli")
    assert_clean(run_in(folder, [command, *args]), folder, set())


def _bomb(levels: int = 9) -> str:
    lines = ["a0: &a0 [x, x, x, x, x, x, x, x, x]"]
    for i in range(1, levels):
        refs = ", ".join([f"*a{i - 1}"] * 9)
        lines.append(f"a{i}: &a{i} [{refs}]")
    return "\n".join(lines) + "\n"


HEADER = "name: x\nsource: y\ninput: {channels: 3, resolution: 32}\nwidth: floor\nclasses: 2\n"
ADVERSARIAL = {
    "alias bomb at the top": _bomb(),
    "alias bomb as a name": _bomb().replace("a8: &a8", "name: &a8") + "source: y\ninput: {channels: 3, resolution: "
                            "32}\nwidth: floor\nclasses: 2\nlayers: [dw]\n",
    "alias bomb as a channel count": HEADER.replace("name: x", "name: x\n" + _bomb().replace("a", "b")
                                                    .replace("b0: &b0", "z: &b0")).replace("\n\n", "\n")
                                     + "layers:\n  - {kind: pw, out: *b8}\n",
    "alias bomb as a layer kind": HEADER + "bomb: &b [[1, 2], [3, 4]]\nlayers:\n  - {kind: *b}\n",
    "deep flow nesting": "a: " + "[" * 100_000 + "]" * 100_000 + "\n",
    "compact nested sequences": "- " * 30_000 + "x\n",
    "nested complex keys": "? " * 30_000 + "x\n",
    "flow brackets behind a # in a plain scalar": "x: [a#b, " + "[" * 20_000 + "]" * 20_000 + "]\n",
    "deep block nesting": "".join(" " * (2 * i) + f"k{i}:\n" for i in range(3000)),
    "100,000 layers": HEADER + "layers:\n" + "  - {kind: dw}\n" * 100_000,
    "100,000 layers in flow style": HEADER + "layers: [" + ", ".join(["dw"] * 100_000) + "]\n",
    "3,000 layers": HEADER + "layers:\n" + "  - dw\n" * 3_000,
    "a repeat of a billion": HEADER + "layers:\n  - {kind: dw, repeat: 1000000000}\n",
    "repeats past the layer limit": HEADER + "layers:\n" + "  - {kind: dw, repeat: 1000}\n" * 21,
    "a channel count of 10^30": HEADER + "layers:\n  - {kind: pw, out: 1000000000000000000000000000000}\n",
    "a huge kernel": HEADER + "layers:\n  - {kind: dw, kernel: 100001}\n",
    "a float stride": HEADER + "layers:\n  - {kind: dw, stride: 1.5}\n",
    "python object tag": "name: !!python/object/apply:os.system ['touch pwned']\n",
    "python name tag": HEADER + "layers: !!python/name:os.system\n",
    "non-UTF-8 bytes": b"name: caf\xe9\nlayers: [dw]\n",
    "binary junk": bytes(range(256)) * 4,
    "empty": "",
    "only a comment": "# nothing\n",
    "a bare scalar": "42\n",
    "tabs for indentation": "name: x\n\tlayers: []\n",
    "a byte-order mark": "\ufeff" + HEADER + "layers: [dw]\n",
    "two documents": HEADER + "layers: [dw]\n---\nname: y\n",
    "a duplicate key": HEADER + "layers: [dw]\nlayers: [pw]\n",
}


@pytest.mark.parametrize("case", sorted(ADVERSARIAL))
def test_adversarial_specs(tmp_path, case):
    write(tmp_path, "spec.yaml", ADVERSARIAL[case])
    result = run_in(tmp_path, ["table", "--model", "spec.yaml", "-f", "json"])
    assert_clean(result, tmp_path, {"spec.yaml"})
    if case not in ("a byte-order mark",):
        assert result.exit_code == 2, case


@pytest.mark.parametrize("case", sorted(ADVERSARIAL))
def test_adversarial_budgets(tmp_path, case):
    content = ADVERSARIAL[case]
    write(tmp_path, "budgets.yaml", content.replace(b"layers", b"budgets") if isinstance(content, bytes)
          else content.replace("layers", "budgets"))
    result = run_in(tmp_path, ["check", "budgets.yaml"])
    assert_clean(result, tmp_path, {"budgets.yaml"})
    assert result.exit_code == 2, case
