"""Rendering: the only module that prints. Reports become a rich table, JSON,
CSV or Markdown; every figure shown comes from the Report, unrounded in the
machine formats (json, csv)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import IO

from .costs import Report
from .expand import Config
from .text import ASCII_ERRORS, markdown_cell, printable, shows_unicode, utf8_safe
from .units import format_bytes, format_count

FORMATS = ("table", "json", "csv", "markdown")


@dataclass
class Grid:
    """A table in display form plus its raw form for CSV."""

    title: str
    headers: list[str]
    right: set[int]  # columns aligned right (numbers)
    rows: list[list[str]]
    csv_headers: list[str]
    csv_rows: list[list[object]]
    totals: list[str] | None = None
    notes: list[str] = field(default_factory=list)
    # columns (indexes into headers) that a terminal too narrow for the whole
    # table goes without, in the order they are left out
    optional: list[int] = field(default_factory=list)


def _shape(shape: tuple[int, ...]) -> str:
    return "×".join(str(s) for s in shape)


def _pct(part: int, whole: int) -> str:
    return f"{100 * part / whole:.2f}%" if whole else "-"


def share(part: int, whole: int, digits: int = 4) -> float | None:
    """100 x part / whole for JSON, rounded; None (null) where whole is 0."""
    return round(100 * part / whole, digits) if whole else None


def ratio(part: int, whole: int) -> float | None:
    """part / whole for JSON; None (null) where whole is 0."""
    return part / whole if whole else None


def format_alpha(alpha) -> str:
    text = f"{float(alpha):g}"
    return text if "." in text or "e" in text else f"{text}.0"


def describe(config: Config) -> str:
    """The configuration in one line; the model's name, the user's text, escaped."""
    h, w = config.resolution
    text = f"{printable(config.model)} · α {format_alpha(config.alpha)} · {h}×{w} · {config.classes} classes"
    return text if config.convention == "paper" else f"{text} · counted as {config.convention} counts"


def summary(report: Report) -> str:
    return (f"{format_count(report.madds)} mult-adds ({report.madds:,}; {format_count(2 * report.madds)} FLOPs), "
            f"{format_count(report.params, 2)} params ({report.params:,}; "
            f"+{report.bn_params:,} BatchNorm = {report.params + report.bn_params:,} in PyTorch)")


def _head(config: Config) -> dict:
    return {"model": config.model, "alpha": float(config.alpha), "resolution": list(config.resolution)}


def _totals(report: Report) -> dict:
    return {"madds": report.madds, "params": report.params, "bn_params": report.bn_params}


# --------------------------------------------------------------------------- views


def layers_json(config: Config, report: Report) -> dict:
    return {
        **_head(config),
        "classes": config.classes,
        "convention": config.convention,
        "totals": _totals(report),
        "layers": [
            {"index": r.layer.index, "name": r.layer.name, "kind": r.layer.kind, "in": list(r.layer.in_shape),
             "out": list(r.layer.out_shape), "kernel": r.layer.kernel, "stride": r.layer.stride,
             "madds": r.madds, "params": r.params, "bn_params": r.bn_params,
             "activations": r.layer.activations}
            for r in report.rows
        ],
    }


def layers_grid(config: Config, report: Report) -> Grid:
    rows, raw = [], []
    for r in report.rows:
        lay = r.layer
        ks = "global" if lay.kind == "avgpool" else "-" if lay.kernel is None else f"{lay.kernel}×{lay.kernel}/{lay.stride}"
        acts = lay.activations
        kind = f"{lay.kind} +res" if lay.residual else lay.kind  # the block's input is added here
        rows.append([str(lay.index), lay.name, kind, _shape(lay.in_shape), _shape(lay.out_shape), ks,
                     f"{r.madds:,}", f"{r.params:,}", f"{acts:,}", _pct(r.madds, report.madds)])
        raw.append([lay.index, lay.name, lay.kind, *lay.in_shape, *lay.out_shape,
                    "" if lay.kernel is None else lay.kernel, "" if lay.stride is None else lay.stride,
                    r.madds, r.params, r.bn_params, acts])
    peak = max((r.layer.activations for r in report.rows), default=0)
    return Grid(
        title=describe(config),
        headers=["#", "layer", "kind", "in C×H×W", "out C×H×W", "kernel/s", "mult-adds", "params", "in+out",
                 "% madds"],
        right={0, 6, 7, 8, 9},
        rows=rows,
        csv_headers=["index", "name", "kind", "in_c", "in_h", "in_w", "out_c", "out_h", "out_w", "kernel",
                     "stride", "madds", "params", "bn_params", "activations"],
        csv_rows=raw,
        totals=["", "total", "", "", "", "", f"{report.madds:,}", f"{report.params:,}", f"peak {peak:,}",
                "100.00%"],
        optional=[9, 8, 5, 2],  # % madds, in+out, kernel/s, kind
        notes=[summary(report), f"Peak activations (largest input + output of one layer): {peak:,} elements, "
               f"{format_bytes(4 * peak)} in fp32, {format_bytes(peak)} in int8."],
    )


def by_kind_json(config: Config, report: Report) -> dict:
    from .analysis import by_kind

    return {**_head(config), "totals": _totals(report), "by_kind": [
        {"kind": k.kind, "layers": k.layers, "madds": k.madds, "params": k.params,
         "madds_pct": share(k.madds, report.madds), "params_pct": share(k.params, report.params)}
        for k in by_kind(report)]}


def by_kind_grid(config: Config, report: Report) -> Grid:
    from .analysis import by_kind

    kinds = by_kind(report)
    return Grid(
        title=f"{describe(config)}: resources per layer type",
        headers=["type", "layers", "mult-adds", "% mult-adds", "params", "% params"],
        right={1, 2, 3, 4, 5},
        rows=[[k.kind, str(k.layers), f"{k.madds:,}", _pct(k.madds, report.madds), f"{k.params:,}",
               _pct(k.params, report.params)] for k in kinds],
        csv_headers=["kind", "layers", "madds", "params"],
        csv_rows=[[k.kind, k.layers, k.madds, k.params] for k in kinds],
        totals=["total", str(len(report.rows)), f"{report.madds:,}", "100.00%", f"{report.params:,}", "100.00%"],
        notes=[summary(report)],
    )


def standard_json(config: Config, report: Report) -> dict:
    from .analysis import standard_comparison

    cmp = standard_comparison(report)
    return {**_head(config), "totals": _totals(report), "standard": {
        "madds": cmp.madds, "params": cmp.params,
        "standard_madds": cmp.standard_madds, "standard_params": cmp.standard_params,
        "pairs": [{"dw": p.dw.layer.name, "pw": p.pw.layer.name, "in": list(p.dw.layer.in_shape),
                   "out": list(p.pw.layer.out_shape), "kernel": p.dw.layer.kernel, "stride": p.dw.layer.stride,
                   "madds": p.madds, "params": p.params, "standard_madds": p.standard_madds,
                   "standard_params": p.standard_params, "ratio": ratio(p.madds, p.standard_madds)}
                  for p in cmp.pairs]}}


def standard_grid(config: Config, report: Report) -> Grid:
    from .analysis import standard_comparison

    cmp = standard_comparison(report)
    rows, raw = [], []
    for p in cmp.pairs:
        lay = p.dw.layer
        rows.append([lay.block, _shape(lay.in_shape), _shape(p.pw.layer.out_shape),
                     f"{lay.kernel}×{lay.kernel}/{lay.stride}", f"{p.madds:,}", f"{p.standard_madds:,}",
                     f"{float(p.ratio):.4f}", f"{float(p.formula):.4f}", f"{p.standard_madds / p.madds:.2f}×"])
        raw.append([lay.block, lay.kernel, lay.stride, *lay.in_shape, *p.pw.layer.out_shape, p.madds, p.params,
                    p.standard_madds, p.standard_params])
    reduction = cmp.standard_madds / cmp.madds if cmp.madds else 0.0
    return Grid(
        title=f"{describe(config)}: depthwise separable vs standard convolution",
        headers=["block", "in C×H×W", "out C×H×W", "kernel/s", "separable", "standard", "ratio",
                 "1/N + 1/K²", "reduction"],
        right={4, 5, 6, 7, 8},
        rows=rows,
        csv_headers=["block", "kernel", "stride", "in_c", "in_h", "in_w", "out_c", "out_h", "out_w", "madds",
                     "params", "standard_madds", "standard_params"],
        csv_rows=raw,
        totals=["network", "", "", "", f"{cmp.madds:,}", f"{cmp.standard_madds:,}",
                f"{cmp.madds / cmp.standard_madds:.4f}" if cmp.standard_madds else "-", "", f"{reduction:.2f}×"],
        optional=[7, 3, 1],  # 1/N + 1/K² (the ratio again, as a formula), kernel/s, in C×H×W
        notes=[f"{len(cmp.pairs)} separable pairs. With each replaced by a standard convolution the network would "
               f"cost {format_count(cmp.standard_madds)} mult-adds and {format_count(cmp.standard_params, 2)} params "
               f"instead of {format_count(cmp.madds)} and {format_count(cmp.params, 2)}."],
    )


VIEWS = {
    "layers": (layers_grid, layers_json),
    "by_kind": (by_kind_grid, by_kind_json),
    "standard": (standard_grid, standard_json),
}


# --------------------------------------------------------------------------- output


def dump_json(data: dict, out: IO[str]) -> None:
    """``data`` as strict JSON (RFC 8259: a NaN or an infinity is a bug, and
    raises rather than printing what no parser accepts)."""
    import json

    json.dump(_unicode(data), out, indent=2, allow_nan=False)
    out.write("\n")


def _unicode(value):
    """``value`` with every string made valid Unicode (text.utf8_safe)."""
    if isinstance(value, str):
        return utf8_safe(value)
    if isinstance(value, dict):
        return {_unicode(k): _unicode(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_unicode(v) for v in value]
    return value


def render_report(config: Config, report: Report, view: str, fmt: str, out: IO[str]) -> None:
    grid_of, json_of = VIEWS[view]
    if fmt == "json":
        dump_json({"schema": "mnsize.table/1", **json_of(config, report)}, out)
    else:
        write_grid(grid_of(config, report), fmt, out)


def write_grid(grid: Grid, fmt: str, out: IO[str], row_style=None) -> None:
    """Write ``grid`` as csv, markdown or a rich table; ``row_style(row)`` gives
    a rich style for a row of the table (None for none).

    Cells, titles and notes are text, never rich markup, and the user's text in
    them is shown escaped (mnsize.text). On a terminal too narrow for the whole
    table, the columns in ``grid.optional`` are left out, in that order."""
    if fmt == "csv":
        import csv

        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(grid.csv_headers)
        writer.writerows(grid.csv_rows)
    elif fmt == "markdown":
        cell = lambda text: markdown_cell(str(text))  # noqa: E731
        out.write(f"**{cell(grid.title)}**\n\n")
        out.write("| " + " | ".join(cell(h) for h in grid.headers) + " |\n")
        out.write("|" + "|".join("---:" if i in grid.right else "---" for i in range(len(grid.headers))) + "|\n")
        for row in grid.rows + ([grid.totals] if grid.totals else []):
            out.write("| " + " | ".join(cell(c) for c in row) + " |\n")
        for note in grid.notes:
            out.write(f"\n{cell(note)}\n")
    else:
        _rich_table(grid, out, row_style)


#: the width of a table that is not shown on a terminal: wide enough that
#: piped or redirected tables keep their rows whole
PIPED_WIDTH = 200


def make_console(out: IO[str], width: int | None = None):
    """A rich Console on ``out``: as wide as the terminal, or PIPED_WIDTH when
    ``out`` is not one; a closed pipe raises BrokenPipeError for the CLI to
    handle (rich would exit 1, the status of a failed check)."""
    # rich is imported here only: json and csv output never pay for it
    from rich.console import Console

    class _Console(Console):
        def on_broken_pipe(self) -> None:
            raise BrokenPipeError

    if width is None and not out.isatty():
        width = PIPED_WIDTH
    # a height with the width, or rich takes a dumb terminal's 80 columns instead
    return _Console(file=out, highlight=False, width=width, height=None if width is None else 25, emoji=False,
                    markup=False)


def as_text(text, console):
    """``text`` for ``console``: a plain string becomes rich Text (never markup)
    with its control characters escaped; rich Text keeps its styles. Where the
    console's encoding cannot show mnsize's non-ASCII characters, they are in
    ASCII already here, so that a table is laid out with the widths it is
    printed with."""
    from rich.text import Text

    if not isinstance(text, Text):
        return Text(for_console(printable(str(text)), console))
    if shows_unicode(console.encoding):
        return text
    text = text.copy()
    text.plain = for_console(text.plain, console)
    return text


def for_console(text: str, console) -> str:
    """``text`` in characters that ``console``'s encoding can show."""
    encoding = console.encoding
    if shows_unicode(encoding):
        return text
    return text.encode(encoding, ASCII_ERRORS).decode(encoding)


def _cell_width(text) -> int:
    from rich.cells import cell_len

    return max((cell_len(line) for line in str(text).splitlines()), default=0)


def _word_width(text) -> int:
    from rich.cells import cell_len

    return max((cell_len(word) for word in str(text).split()), default=0)


def _table_width(columns: list[list], wraps: list[bool]) -> int:
    """The width of a rich table with the default box and padding: each column
    its widest cell (its widest word where it may wrap), 3 characters of
    border and padding per column and 1 more."""
    return sum((max(map(_word_width, cells)) if wrap else max(map(_cell_width, cells))) + 3
               for cells, wrap in zip(columns, wraps)) + 1


def _rich_table(grid: Grid, out: IO[str], row_style=None) -> None:
    from rich.table import Table

    console = make_console(out)
    headers = [for_console(h, console) for h in grid.headers]
    texts = [[as_text(c, console) for c in row] for row in grid.rows]
    footer = [as_text(c, console) for c in grid.totals] if grid.totals else None
    columns = [[h, *(row[i] for row in texts), *([footer[i]] if footer else [])] for i, h in enumerate(headers)]
    # a column may wrap at its spaces, never inside a word: a number or a shape
    # is shown whole or not at all
    wraps = [any(" " in str(c).strip() for c in column) for column in columns]
    whole = [False] * len(headers)
    keep = list(range(len(headers)))
    natural = lambda: _table_width([columns[i] for i in keep], whole)  # noqa: E731
    for index in grid.optional:
        if natural() <= console.width:
            break
        keep.remove(index)
    if natural() > console.width and _table_width([columns[i] for i in keep], [wraps[i] for i in keep]) > console.width:
        # not even with its text wrapped: as wide as it is (the terminal folds the
        # lines) rather than a number cut short
        console = make_console(out, width=natural())

    table = Table(title=as_text(grid.title, console), title_justify="left", show_footer=footer is not None,
                  header_style="bold", footer_style="bold")
    for i in keep:
        table.add_column(headers[i], justify="right" if i in grid.right else "left",
                         footer=footer[i] if footer else "", no_wrap=not wraps[i], overflow="fold")
    for raw, row in zip(grid.rows, texts):
        table.add_row(*(row[i] for i in keep), style=row_style(raw) if row_style else None)
    console.print(table)
    for note in grid.notes:  # a terminal's notes wrap at words, a file's stay one line each
        console.print(as_text(note, console), soft_wrap=not console.is_terminal)


# --------------------------------------------------------------------------- verify


def _counts(counts, shape=None) -> dict:
    data = {"madds": counts.madds, "params": counts.params, "bn_params": counts.bn_params}
    if shape is not None:
        data["out"] = list(shape)
    return data


def verification_json(v) -> dict:
    return {
        **_head(v.config),
        "match": v.match,
        "symbolic": _counts(v.symbolic),
        "torch": _counts(v.torch),
        "layers": [{"name": c.row.layer.name, "symbolic": _counts(c.symbolic, c.row.layer.out_shape),
                    "torch": _counts(c.torch.counts, c.torch.out_shape), "match": c.match}
                   for c in v.layers],
    }


def _pair(a: int, b: int) -> str:
    return f"{a:,}" if a == b else f"{a:,} ≠ {b:,}"


def verification_grid(v, device: str) -> Grid:
    rows = []
    for check in v.layers:
        lay, tl = check.row.layer, check.torch
        shape = _shape(lay.out_shape) if lay.out_shape == tl.out_shape else \
            f"{_shape(lay.out_shape)} ≠ {_shape(tl.out_shape)}"
        rows.append([str(lay.index), lay.name, shape, _pair(check.row.madds, tl.counts.madds),
                     _pair(check.row.params, tl.counts.params), _pair(check.row.bn_params, tl.counts.bn_params),
                     "ok" if check.match else "MISMATCH: " + ", ".join(check.differences)])
    s, t = v.symbolic, v.torch
    verdict = ("every layer agrees with torch" if v.match else
               f"{len(v.mismatches)} of {len(v.layers)} layers differ: "
               + ", ".join(c.row.layer.name for c in v.mismatches))
    return Grid(
        title=f"{describe(v.config)} vs PyTorch ({device})",
        headers=["#", "layer", "out C×H×W", "mult-adds", "params", "bn params", "status"],
        right={0, 3, 4, 5},
        rows=rows,
        csv_headers=[],
        csv_rows=[],
        totals=["", "total", "", _pair(s.madds, t.madds), _pair(s.params, t.params),
                _pair(s.bn_params, t.bn_params), "ok" if s == t else "MISMATCH"],
        notes=[f"{verdict}. Torch side: FlopCounterMode FLOPs / 2, numel() of parameters, forward-hook shapes; "
               "a ≠ b reads mnsize ≠ torch."],
    )


def render_verification(v, device: str, fmt: str, out: IO[str]) -> None:
    if fmt == "json":
        dump_json({"schema": "mnsize.verify/1", **verification_json(v)}, out)
    else:
        write_grid(verification_grid(v, device), "table", out,
                   row_style=lambda row: None if row[-1] == "ok" else "bold red")


def render_verifications(results: list, device: str, fmt: str, out: IO[str]) -> None:
    """Many configurations (verify --all): one row each."""
    if fmt == "json":
        dump_json({"schema": "mnsize.verify/1", "match": all(v.match for v in results), "device": device,
                   "configs": [{**_head(v.config), "match": v.match, "symbolic": _counts(v.symbolic),
                                "torch": _counts(v.torch), "mismatches": [c.row.layer.name for c in v.mismatches]}
                               for v in results]}, out)
        return
    rows = []
    for v in results:
        h, w = v.config.resolution
        status = f"ok ({len(v.layers)} layers)" if v.match else \
            "MISMATCH: " + (", ".join(c.row.layer.name for c in v.mismatches) or "totals")
        rows.append([v.config.model, format_alpha(v.config.alpha), f"{h}×{w}", _pair(v.symbolic.madds, v.torch.madds),
                     _pair(v.symbolic.params, v.torch.params), _pair(v.symbolic.bn_params, v.torch.bn_params),
                     status])
    bad = sum(not v.match for v in results)
    grid = Grid(
        title=f"mnsize vs PyTorch, every built-in spec and grid point ({device} device)",
        headers=["model", "α", "resolution", "mult-adds", "params", "bn params", "status"],
        right={3, 4, 5}, rows=rows, csv_headers=[], csv_rows=[],
        notes=[f"{len(results) - bad} of {len(results)} configurations agree with torch in every layer."])
    write_grid(grid, "table", out, row_style=lambda row: None if row[-1].startswith("ok") else "bold red")
