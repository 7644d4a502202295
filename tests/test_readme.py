"""The README's set-up commands are the ones CI runs, what it says about the
dependencies is what pyproject.toml declares, and its Python example runs and
prints what it says. (Its `$ mnsize ...` examples are run by
tests/test_docs_examples.py, its links checked by tests/test_docs.py.)"""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text(encoding="utf-8")


def section(title: str) -> str:
    return README.split(f"## {title}", 1)[1].split("\n## ", 1)[0]


def setup_commands() -> list[str]:
    return re.findall(r"```sh\n(.*?)\n```", section("Set up and run"), re.DOTALL)


def test_readme_opens_with_two_commands_that_ci_runs():
    install, test = setup_commands()
    assert "torch==2.13.0" in install and "mnsize table" in install
    assert "pytest" in test
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    assert install in ci.splitlines()
    assert f"{test} || status=$?" in ci.splitlines()


def test_readme_names_the_core_dependencies_pyproject_declares():
    pyproject = (ROOT / "pyproject.toml").read_text(encoding="utf-8")
    declared = re.search(r"^dependencies = \[(.*?)\]", pyproject, re.DOTALL | re.MULTILINE).group(1)
    names = {re.match(r"[A-Za-z0-9_.-]+", d).group(0).lower() for d in re.findall(r'"([^"]+)"', declared)}
    assert names == {"click", "rich", "pyyaml"}
    setup = " ".join(section("Set up and run").split())
    assert "mnsize itself needs only click, rich and PyYAML" in setup
    assert "`pip install -e .` alone is enough" in setup


def test_readme_is_short():
    assert len(README.splitlines()) <= 200


def python_example() -> str:
    (block,) = re.findall(r"```python\n(.*?)```", README, re.DOTALL)
    return block


def test_readme_python_example_runs_and_prints_what_it_says(monkeypatch, capsys):
    code = python_example()
    expected = [line.split("  # ", 1)[1].strip() for line in code.splitlines()
                if line.startswith("print(") and "  # " in line]
    assert len(expected) == 3
    monkeypatch.chdir(ROOT)  # the example names configs/budgets.yaml relative to the checkout
    exec(compile(code, "README.md", "exec"), {"__name__": "readme_example"})
    assert capsys.readouterr().out.splitlines() == expected
