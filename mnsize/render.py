"""Rendering: the only module that prints. Reports become a rich table, JSON,
CSV or Markdown; every figure shown comes from the Report, unrounded in the
machine formats (json, csv)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import IO

from .costs import Report
from .expand import Config
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


def _shape(shape: tuple[int, ...]) -> str:
    return "×".join(str(s) for s in shape)


def _pct(part: int, whole: int) -> str:
    return f"{100 * part / whole:.2f}%" if whole else "-"


def format_alpha(alpha) -> str:
    text = f"{float(alpha):g}"
    return text if "." in text or "e" in text else f"{text}.0"


def describe(config: Config) -> str:
    h, w = config.resolution
    text = f"{config.model} · α {format_alpha(config.alpha)} · {h}×{w} · {config.classes} classes"
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
        notes=[summary(report), f"Peak activations (largest input + output of one layer): {peak:,} elements, "
               f"{format_bytes(4 * peak)} in fp32, {format_bytes(peak)} in int8."],
    )


def by_kind_json(config: Config, report: Report) -> dict:
    from .analysis import by_kind

    return {**_head(config), "totals": _totals(report), "by_kind": [
        {"kind": k.kind, "layers": k.layers, "madds": k.madds, "params": k.params,
         "madds_pct": round(100 * k.madds / report.madds, 4) if report.madds else 0.0,
         "params_pct": round(100 * k.params / report.params, 4) if report.params else 0.0}
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
                   "standard_params": p.standard_params, "ratio": float(p.ratio)} for p in cmp.pairs]}}


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


def render_report(config: Config, report: Report, view: str, fmt: str, out: IO[str]) -> None:
    grid_of, json_of = VIEWS[view]
    if fmt == "json":
        import json

        json.dump(json_of(config, report), out, indent=2)
        out.write("\n")
    else:
        write_grid(grid_of(config, report), fmt, out)


def write_grid(grid: Grid, fmt: str, out: IO[str], row_style=None) -> None:
    """Write ``grid`` as csv, markdown or a rich table; ``row_style(row)`` gives
    a rich style for a row of the table (None for none)."""
    if fmt == "csv":
        import csv

        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(grid.csv_headers)
        writer.writerows(grid.csv_rows)
    elif fmt == "markdown":
        out.write(f"**{grid.title}**\n\n")
        out.write("| " + " | ".join(grid.headers) + " |\n")
        out.write("|" + "|".join("---:" if i in grid.right else "---" for i in range(len(grid.headers))) + "|\n")
        for row in grid.rows + ([grid.totals] if grid.totals else []):
            out.write("| " + " | ".join(c.replace("|", "\\|") for c in row) + " |\n")
        for note in grid.notes:
            out.write(f"\n{note}\n")
    else:
        _rich_table(grid, out, row_style)


def make_console(out: IO[str]):
    """A rich Console on ``out``: wide when not a terminal, so that piped tables
    keep their rows whole; a closed pipe raises BrokenPipeError for the CLI to
    handle (rich would exit 1, the status of a failed check)."""
    # rich is imported here only: json and csv output never pay for it
    from rich.console import Console

    class _Console(Console):
        def on_broken_pipe(self) -> None:
            raise BrokenPipeError

    return _Console(file=out, highlight=False, width=None if out.isatty() else 200)


def _rich_table(grid: Grid, out: IO[str], row_style=None) -> None:
    from rich.table import Table

    console = make_console(out)
    table = Table(title=grid.title, title_justify="left", show_footer=grid.totals is not None,
                  header_style="bold", footer_style="bold")
    for i, header in enumerate(grid.headers):
        table.add_column(header, justify="right" if i in grid.right else "left",
                         footer=grid.totals[i] if grid.totals else "", no_wrap=True)
    for row in grid.rows:
        table.add_row(*row, style=row_style(row) if row_style else None)
    console.print(table)
    for note in grid.notes:
        console.print(note, soft_wrap=True)


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
        import json

        json.dump(verification_json(v), out, indent=2)
        out.write("\n")
    else:
        write_grid(verification_grid(v, device), "table", out,
                   row_style=lambda row: None if row[-1] == "ok" else "bold red")


def render_verifications(results: list, device: str, fmt: str, out: IO[str]) -> None:
    """Many configurations (verify --all): one row each."""
    if fmt == "json":
        import json

        json.dump({"match": all(v.match for v in results), "device": device, "configs": [
            {**_head(v.config), "match": v.match, "symbolic": _counts(v.symbolic), "torch": _counts(v.torch),
             "mismatches": [c.row.layer.name for c in v.mismatches]} for v in results]}, out, indent=2)
        out.write("\n")
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
