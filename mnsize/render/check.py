"""Rendering of the budget gate's results: a table for people, JSON for
scripts, GitHub annotations and a job summary, JUnit XML for CI systems.

Budget names, file paths and model paths are the user's text: each format
gets them escaped for where they land (text.printable on a terminal and in
one-line messages, Markdown cells, XML 1.0 characters).
"""

from __future__ import annotations

import os
from typing import IO, TYPE_CHECKING

from ..metrics import METRICS
from ..text import markdown_cell, printable, xml_text
from .base import Grid, dump_json, format_alpha, make_console, write_grid

if TYPE_CHECKING:  # the results are only read here: the gate itself is not imported
    from ..gate import Result

SCHEMA = "mnsize.check/1"
#: the report's formats, each written by render_check
FORMATS = ("table", "json", "github", "junit")
STATUS_STYLE = {"pass": "green", "warn": "yellow", "fail": "bold red"}


def _used(r: Result) -> str:
    return f"{r.margin:.1f}%" if r.margin is not None else "-"


def _plural(n: int, word: str) -> str:
    return f"{n} {word}" + ("" if n == 1 else "s")


def message(r: Result) -> str:
    """One line about a result, for annotations, reports and stderr."""
    share = f"is {r.margin:.1f}% of" if r.margin is not None else "against"
    metric = METRICS[r.metric]
    text = (f"{r.budget.name}: {metric.label} {metric.format(r.value)} ({r.value:,}) {share} "
            f"{metric.budget_key} {metric.format(r.limit)}")
    if r.reasons:
        text += ": " + "; ".join(r.reasons)
    return printable(text)


def counts(results: list[Result]) -> dict[str, int]:
    """How many checks there were, and how many failed, by the limit or by
    growth since the baseline (a check can fail both ways), or warned."""
    return {"checks": len(results), "failed": sum(r.status == "fail" for r in results),
            "over_budget": sum(r.over_limit for r in results), "over_growth": sum(r.over_growth for r in results),
            "warnings": sum(r.status == "warn" for r in results)}


def verdict(results: list[Result]) -> str:
    """'passed: 10 checks, 0 over budget, 1 warning.' (growth counted when a
    baseline was compared)."""
    c = counts(results)
    parts = [_plural(c["checks"], "check"), f"{c['over_budget']} over budget"]
    if any(r.baseline is not None or r.over_growth for r in results):
        parts.append(f"{c['over_growth']} over the growth limit")
    parts.append(_plural(c["warnings"], "warning"))
    return f"{'FAILED' if c['failed'] else 'passed'}: {', '.join(parts)}."


def _config(r: Result) -> str:
    b = r.budget
    model = os.path.basename(b.model) if "/" in b.model else b.model
    return printable(f"{model} α {format_alpha(b.alpha)} {r.resolution[0]}×{r.resolution[1]}"
                     + (f" {b.dtype}" if b.dtype != "fp32" else ""))


# --------------------------------------------------------------------------- table


HEADERS = ("budget", "configuration", "metric", "value", "limit", "used", "status", "why")
# on a narrow terminal these columns become notes under the table, in this order
FOLDABLE = ("why", "configuration")


def _width(columns: list[list[str]]) -> int:
    """The width of a rich table with these columns (rich's default box: one
    space of padding each side, a rule between columns and at both edges)."""
    from rich.cells import cell_len

    return sum(max(cell_len(str(cell)) for cell in column) + 3 for column in columns) + 1


def render_table(results: list[Result], out: IO[str]) -> None:
    """A rich table as wide as the terminal allows: where it would not fit,
    the 'why' column and then the 'configuration' column move into notes
    under it, so that every row stays one line and no number is cut."""
    full = [[printable(r.budget.name), _config(r), METRICS[r.metric].label, f"{r.value:,}", f"{r.limit:,}", _used(r),
             r.status.upper() if r.status == "fail" else r.status, "; ".join(r.reasons)] for r in results]
    headers = list(HEADERS)
    available = make_console(out).width
    folded = []
    for name in FOLDABLE:
        if _width([[h, *(row[i] for row in full)] for i, h in enumerate(HEADERS) if h in headers]) <= available:
            break
        headers.remove(name)
        folded.append(name)
    notes = []
    if "configuration" in folded:
        seen: dict[str, str] = {}
        for row in full:
            seen.setdefault(row[0], row[1])
        notes += [f"{name}: {config}" for name, config in seen.items()]
    if "why" in folded:
        notes += [f"{row[0]} {row[2]}: {row[7]}" for row in full if row[7]]
    notes.append(verdict(results))
    keep = [HEADERS.index(h) for h in headers]
    rows = [[row[i] for i in keep] for row in full]
    status = headers.index("status")
    write_grid(Grid(
        title="mnsize check: budgets", headers=headers,
        right={i for i, h in enumerate(headers) if h in ("value", "limit", "used")}, rows=rows,
        notes=notes),
        "table", out, row_style=lambda row: STATUS_STYLE[row[status].lower()])


# --------------------------------------------------------------------------- json


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 4)


def result_json(r: Result) -> dict:
    b = r.budget
    return {"name": b.name, "file": b.file, "line": b.line_of(r.metric), "model": b.model,
            "alpha": float(b.alpha), "resolution": list(r.resolution), "dtype": b.dtype,
            "metric": r.metric, "unit": METRICS[r.metric].unit_name, "value": r.value, "limit": r.limit,
            "margin": _round(r.margin), "status": r.status, "over_limit": r.over_limit,
            "over_growth": r.over_growth, "reasons": list(r.reasons), "baseline": r.baseline,
            "growth": _round(r.growth)}


def results_json(results: list[Result]) -> dict:
    c = counts(results)
    return {"schema": SCHEMA, "passed": c["failed"] == 0, **c, "results": [result_json(r) for r in results]}


def error_json(message: str, file: str | None = None, line: int | None = None) -> dict:
    """What --format json prints on stdout when the tool fails (exit 2)."""
    return {"schema": SCHEMA, "passed": False, "error": {"message": message, "file": file, "line": line}}


# --------------------------------------------------------------------------- github


def _escape_data(text: str) -> str:
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def _escape_property(text: str) -> str:
    return _escape_data(text).replace(":", "%3A").replace(",", "%2C")


def workspace_path(path: str, workspace: str | None) -> str:
    """``path`` relative to the workspace (as GitHub wants an annotation's
    file) when it lies inside it, else as given."""
    if not workspace:
        return path
    try:
        relative = os.path.relpath(os.path.abspath(path), os.path.abspath(workspace))
    except ValueError:  # another drive, on Windows
        return path
    return path if relative == os.pardir or relative.startswith(os.pardir + os.sep) else relative


def annotation(level: str, text: str, *, title: str, file: str | None = None, line: int | None = None,
               workspace: str | None = None) -> str:
    """One workflow command line: ``::error file=…,line=…,title=…::text``."""
    props = []
    if file:
        props.append(f"file={_escape_property(printable(workspace_path(file, workspace)))}")
        if line:
            props.append(f"line={line}")
    props.append(f"title={_escape_property(printable(title))}")
    return f"::{level} {','.join(props)}::{_escape_data(printable(text))}\n"


def render_github(results: list[Result], out: IO[str], workspace: str | None = None) -> None:
    """Workflow commands: an error or warning annotation at each budget line that
    is over or near its limit; passing checks print one notice."""
    for r in results:
        if r.status == "pass":
            continue
        out.write(annotation("error" if r.status == "fail" else "warning", message(r),
                             title=f"mnsize budget {r.budget.name}", file=r.budget.file,
                             line=r.budget.line_of(r.metric), workspace=workspace))
    c = counts(results)
    growth = f", {c['over_growth']} over the growth limit" if c["over_growth"] else ""
    out.write(f"::notice title=mnsize check::{c['checks']} checks, {c['over_budget']} over budget{growth}\n")


def summary_markdown(results: list[Result]) -> str:
    """The job summary: a Markdown table, every cell escaped."""
    c = counts(results)
    icon = {"pass": "✅ pass", "warn": "⚠️ warn", "fail": "❌ FAIL"}
    lines = [f"### mnsize check: {'FAILED' if c['failed'] else 'passed'}", "", verdict(results), "",
             "| budget | metric | value | limit | used | status |", "|---|---|---:|---:|---:|---|"]
    lines += [f"| {markdown_cell(r.budget.name)} | {METRICS[r.metric].label} | {r.value:,} | {r.limit:,} | {_used(r)} | "
              f"{icon[r.status]} |" for r in results]
    return "\n".join(lines) + "\n"


# --------------------------------------------------------------------------- junit


def _xml(text: str) -> str:
    """One line of the user's text in characters XML 1.0 allows."""
    return xml_text(printable(text))


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
            suite = suites[file] = ET.SubElement(root, "testsuite", name=_xml(file), tests="0", failures="0")
        suite.set("tests", str(int(suite.get("tests")) + 1))
        case = ET.SubElement(suite, "testcase", classname=_xml(r.budget.name), name=METRICS[r.metric].budget_key)
        if r.budget.file:
            case.set("file", _xml(r.budget.file))
            case.set("line", str(r.budget.line_of(r.metric) or ""))
        text = _xml(message(r))
        if r.status == "fail":
            suite.set("failures", str(int(suite.get("failures")) + 1))
            ET.SubElement(case, "failure", message=text, type="BudgetExceeded").text = text
        ET.SubElement(case, "system-out").text = text if r.status != "warn" else "warning: " + text
    ET.indent(root)
    out.write('<?xml version="1.0" encoding="UTF-8"?>\n')
    out.write(ET.tostring(root, encoding="unicode"))
    out.write("\n")


def render_check(results: list[Result], fmt: str, out: IO[str], workspace: str | None = None) -> None:
    """Write the report in ``fmt``; ``workspace`` ($GITHUB_WORKSPACE) makes
    annotation paths relative to it."""
    if fmt == "json":
        dump_json(results_json(results), out)
    elif fmt == "github":
        render_github(results, out, workspace)
    elif fmt == "junit":
        render_junit(results, out)
    else:
        render_table(results, out)
