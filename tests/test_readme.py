"""The README's set-up commands are the ones CI runs, and its figures are real."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from mnsize import count, expand, load_model

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text(encoding="utf-8")


def setup_commands() -> list[str]:
    section = README.split("## Set up and run", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"```sh\n(.*?)\n```", section, re.DOTALL)


def test_readme_opens_with_two_commands_that_ci_runs():
    install, test = setup_commands()
    assert "torch==2.13.0" in install and "mnsize table" in install
    assert "pytest" in test
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    assert install in ci.splitlines()
    assert f"{test} || status=$?" in ci.splitlines()


COUNT_ROWS = re.findall(r"^\| [^|]*MobileNet[^|]*\| [\d,]+ \| [\d,]+ \|.*$", README, re.MULTILINE)


def test_readme_count_table_is_found():
    assert len(COUNT_ROWS) == 11


@pytest.mark.parametrize("row", COUNT_ROWS)
def test_readme_count_table(row):
    cells = [c.strip() for c in row.strip("|").split("|")]
    args = re.search(r"`(--[^`]*)`", cells[0])
    argv = args.group(1).split() if args else []
    opts = dict(zip(argv[::2], argv[1::2]))
    report = count(expand(load_model(opts.get("--model", "mobilenet_v1")), opts.get("--alpha", "1.0"),
                          int(opts.get("--res", 224))))
    assert cells[1] == f"{report.madds:,}"
    assert cells[2] == f"{report.params:,}"
