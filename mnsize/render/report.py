"""`mnsize table`'s views of a Report: every layer, per layer kind (the
paper's Table 2), or each separable pair against a standard convolution.
Every figure comes from the Report, unrounded in the machine formats (json,
csv)."""

from __future__ import annotations

from typing import IO

from ..conventions import CONVENTIONS
from ..costs import Report
from ..expand import Config
from ..units import format_bytes, format_count
from .base import Grid, describe, dims, dump_json, head, pct, ratio, share, write_grid

#: the formats of `mnsize table` (and of grid)
FORMATS = ("table", "json", "csv", "markdown")


#: how a convention's params are named in the footer: the tool that counts them so
_COUNTED_BY = {"torch": "PyTorch's numel()", "keras": "Keras"}


def summary(report: Report, convention: str = "paper") -> str:
    """The totals in one line. The paper's params leave BatchNorm out, so its
    2 per channel are added to give PyTorch's ``numel()``; a convention whose
    params include BatchNorm already (mnsize.conventions) says so instead,
    and nothing is added twice. ``report.bn_params`` is always 2 per channel."""
    madds = f"{format_count(report.madds)} mult-adds ({report.madds:,}; {format_count(2 * report.madds)} FLOPs)"
    per_channel = CONVENTIONS[convention].bn_params_in_params
    included = per_channel * report.bn_params // 2
    if per_channel == 0:
        params = f"{report.params:,}; +{report.bn_params:,} BatchNorm = {report.params + report.bn_params:,} in PyTorch"
    else:
        params = f"{report.params:,} as {_COUNTED_BY.get(convention, convention)} counts them, " + \
            (f"BatchNorm's {included:,} included, {per_channel} per channel" if included else "no BatchNorm")
    return f"{madds}, {format_count(report.params, 2)} params ({params})"


def _totals(report: Report) -> dict:
    return {"madds": report.madds, "params": report.params, "bn_params": report.bn_params}



def layers_json(config: Config, report: Report) -> dict:
    return {
        **head(config),
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
        rows.append([str(lay.index), lay.name, kind, dims(lay.in_shape), dims(lay.out_shape), ks,
                     f"{r.madds:,}", f"{r.params:,}", f"{acts:,}", pct(r.madds, report.madds)])
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
        notes=[summary(report, config.convention),
               f"Peak activations (largest input + output of one layer): {peak:,} elements, "
               f"{format_bytes(4 * peak)} in fp32, {format_bytes(peak)} in int8."],
    )


def by_kind_json(config: Config, report: Report) -> dict:
    from ..analysis import by_kind

    return {**head(config), "totals": _totals(report), "by_kind": [
        {"kind": k.kind, "layers": k.layers, "madds": k.madds, "params": k.params,
         "madds_pct": share(k.madds, report.madds), "params_pct": share(k.params, report.params)}
        for k in by_kind(report)]}


def by_kind_grid(config: Config, report: Report) -> Grid:
    from ..analysis import by_kind

    kinds = by_kind(report)
    return Grid(
        title=f"{describe(config)}: resources per layer type",
        headers=["type", "layers", "mult-adds", "% mult-adds", "params", "% params"],
        right={1, 2, 3, 4, 5},
        rows=[[k.kind, str(k.layers), f"{k.madds:,}", pct(k.madds, report.madds), f"{k.params:,}",
               pct(k.params, report.params)] for k in kinds],
        csv_headers=["kind", "layers", "madds", "params"],
        csv_rows=[[k.kind, k.layers, k.madds, k.params] for k in kinds],
        totals=["total", str(len(report.rows)), f"{report.madds:,}", "100.00%", f"{report.params:,}", "100.00%"],
        notes=[summary(report, config.convention)],
    )


def standard_json(config: Config, report: Report) -> dict:
    from ..analysis import standard_comparison

    cmp = standard_comparison(report)
    return {**head(config), "totals": _totals(report), "standard": {
        "madds": cmp.madds, "params": cmp.params,
        "standard_madds": cmp.standard_madds, "standard_params": cmp.standard_params,
        "pairs": [{"dw": p.dw.layer.name, "pw": p.pw.layer.name, "in": list(p.dw.layer.in_shape),
                   "out": list(p.pw.layer.out_shape), "kernel": p.dw.layer.kernel, "stride": p.dw.layer.stride,
                   "madds": p.madds, "params": p.params, "standard_madds": p.standard_madds,
                   "standard_params": p.standard_params, "ratio": ratio(p.madds, p.standard_madds)}
                  for p in cmp.pairs]}}


def standard_grid(config: Config, report: Report) -> Grid:
    from ..analysis import standard_comparison

    cmp = standard_comparison(report)
    rows, raw = [], []
    for p in cmp.pairs:
        lay = p.dw.layer
        rows.append([lay.block, dims(lay.in_shape), dims(p.pw.layer.out_shape),
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


def render_report(config: Config, report: Report, view: str, fmt: str, out: IO[str]) -> None:
    grid_of, json_of = VIEWS[view]
    if fmt == "json":
        dump_json({"schema": "mnsize.table/1", **json_of(config, report)}, out)
    else:
        write_grid(grid_of(config, report), fmt, out)
