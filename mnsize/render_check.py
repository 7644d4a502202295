"""Rendering of the budget gate's results: a table for people, JSON for
scripts, GitHub annotations and a job summary, JUnit XML for CI systems."""

from __future__ import annotations

import json
import os
from typing import IO

from .check import Result
from .render import Grid, format_alpha, write_grid
from .render_search import LABELS, format_metric

FORMATS = ("table", "json", "github", "junit")
STATUS_STYLE = {"pass": "green", "warn": "yellow", "fail": "bold red"}


def _limit_key(metric: str) -> str:
    return f"max_{metric}"


def message(r: Result) -> str:
    """One sentence about a result, for annotations and reports."""
    text = (f"{r.budget.name}: {LABELS[r.metric]} {format_metric(r.metric, r.value)} ({r.value:,}) is "
            f"{r.margin:.1f}% of {_limit_key(r.metric)} {format_metric(r.metric, r.limit)}")
    if r.reasons:
        text += ": " + "; ".join(r.reasons)
    return text


def _config(r: Result) -> str:
    b = r.budget
    model = os.path.basename(b.model) if "/" in b.model else b.model
    return f"{model} α {format_alpha(b.alpha)} {r.resolution[0]}×{r.resolution[1]}" + (
        f" {b.dtype}" if b.dtype != "fp32" else "")


def render_table(results: list[Result], out: IO[str]) -> None:
    rows = [[r.budget.name, _config(r), LABELS[r.metric], f"{r.value:,}", f"{r.limit:,}", f"{r.margin:.1f}%",
             r.status.upper() if r.status == "fail" else r.status,
             "; ".join(r.reasons)] for r in results]
    failed = sum(r.status == "fail" for r in results)
    warned = sum(r.status == "warn" for r in results)
    verdict = "FAILED" if failed else "passed"
    plural = lambda n, word: f"{n} {word}" + ("" if n == 1 else "s")  # noqa: E731
    write_grid(Grid(
        title="mnsize check: budgets",
        headers=["budget", "configuration", "metric", "value", "limit", "used", "status", "why"],
        right={3, 4, 5}, rows=rows, csv_headers=[], csv_rows=[],
        notes=[f"{verdict}: {plural(len(results), 'check')}, {failed} over budget, {plural(warned, 'warning')}."]),
        "table", out, row_style=lambda row: STATUS_STYLE[row[6].lower()])


def results_json(results: list[Result]) -> dict:
    return {"passed": not any(r.status == "fail" for r in results), "results": [
        {"name": r.budget.name, "file": r.budget.file, "line": r.budget.line_of(r.metric), "metric": r.metric,
         "value": r.value, "limit": r.limit, "margin": round(r.margin, 4), "status": r.status,
         "reasons": list(r.reasons), "baseline": r.baseline} for r in results]}


def _escape_data(text: str) -> str:
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def _escape_property(text: str) -> str:
    return _escape_data(text).replace(":", "%3A").replace(",", "%2C")


def render_github(results: list[Result], out: IO[str]) -> None:
    """Workflow commands: an error or warning annotation at each budget line that
    is over or near its limit; passing checks print one notice."""
    for r in results:
        if r.status == "pass":
            continue
        level = "error" if r.status == "fail" else "warning"
        props = []
        if r.budget.file:
            props.append(f"file={_escape_property(r.budget.file)}")
            line = r.budget.line_of(r.metric)
            if line:
                props.append(f"line={line}")
        props.append(f"title={_escape_property(f'mnsize budget {r.budget.name}')}")
        out.write(f"::{level} {','.join(props)}::{_escape_data(message(r))}\n")
    failed = sum(r.status == "fail" for r in results)
    out.write(f"::notice title=mnsize check::{len(results)} checks, {failed} over budget\n")


def summary_markdown(results: list[Result]) -> str:
    failed = sum(r.status == "fail" for r in results)
    icon = {"pass": "✅ pass", "warn": "⚠️ warn", "fail": "❌ FAIL"}
    lines = [f"### mnsize check: {'FAILED' if failed else 'passed'}", "",
             "| budget | metric | value | limit | used | status |", "|---|---|---:|---:|---:|---|"]
    lines += [f"| {r.budget.name} | {LABELS[r.metric]} | {r.value:,} | {r.limit:,} | {r.margin:.1f}% | "
              f"{icon[r.status]} |" for r in results]
    return "\n".join(lines) + "\n"


def render_junit(results: list[Result], out: IO[str]) -> None:
    """JUnit XML: a test suite per budgets file, a test case per budget and metric."""
    import xml.etree.ElementTree as ET

    root = ET.Element("testsuites", name="mnsize check", tests=str(len(results)),
                      failures=str(sum(r.status == "fail" for r in results)))
    suites: dict[str, ET.Element] = {}
    for r in results:
        file = r.budget.file or "command line"
        suite = suites.get(file)
        if suite is None:
            suite = suites[file] = ET.SubElement(root, "testsuite", name=file, tests="0", failures="0")
        suite.set("tests", str(int(suite.get("tests")) + 1))
        case = ET.SubElement(suite, "testcase", classname=r.budget.name, name=_limit_key(r.metric))
        if r.budget.file:
            case.set("file", r.budget.file)
            case.set("line", str(r.budget.line_of(r.metric) or ""))
        if r.status == "fail":
            suite.set("failures", str(int(suite.get("failures")) + 1))
            ET.SubElement(case, "failure", message=message(r), type="BudgetExceeded").text = message(r)
        ET.SubElement(case, "system-out").text = message(r) if r.status != "warn" else "warning: " + message(r)
    ET.indent(root)
    out.write('<?xml version="1.0" encoding="UTF-8"?>\n')
    out.write(ET.tostring(root, encoding="unicode"))
    out.write("\n")


def render_check(results: list[Result], fmt: str, out: IO[str]) -> None:
    if fmt == "json":
        json.dump(results_json(results), out, indent=2)
        out.write("\n")
    elif fmt == "github":
        render_github(results, out)
    elif fmt == "junit":
        render_junit(results, out)
    else:
        render_table(results, out)
