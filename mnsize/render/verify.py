"""`mnsize verify`'s output: mnsize's counts beside PyTorch's, layer by
layer, for one configuration or many."""

from __future__ import annotations

from typing import IO

from .base import Grid, describe, dims, dump_json, format_alpha, head, write_grid



def _counts(counts, shape=None) -> dict:
    data = {"madds": counts.madds, "params": counts.params, "bn_params": counts.bn_params}
    if shape is not None:
        data["out"] = list(shape)
    return data


def verification_json(v) -> dict:
    return {
        **head(v.config),
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
        shape = dims(lay.out_shape) if lay.out_shape == tl.out_shape else \
            f"{dims(lay.out_shape)} ≠ {dims(tl.out_shape)}"
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
                   "configs": [{**head(v.config), "match": v.match, "symbolic": _counts(v.symbolic),
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
        right={3, 4, 5}, rows=rows,
        notes=[f"{len(results) - bad} of {len(results)} configurations agree with torch in every layer."])
    write_grid(grid, "table", out, row_style=lambda row: None if row[-1].startswith("ok") else "bold red")


def _atom(atom) -> dict | None:
    if atom is None:
        return None
    return {"layer": atom.layer, "kind": atom.kind, "madds": atom.madds, "params": atom.params,
            "bn_params": atom.bn_params, "out": list(atom.shape)}


def comparison_json(c) -> dict:
    return {
        **head(c.config),
        "against": c.source,
        "match": c.match,
        "bn_folded": c.folded,
        "spec": dict(zip(("madds", "params", "bn_params"), c.totals("spec"))),
        "model": dict(zip(("madds", "params", "bn_params"), c.totals("model"))),
        "layers": [{"spec": _atom(p.spec), "model": _atom(p.model), "match": p.match} for p in c.pairs],
    }


def comparison_grid(c) -> Grid:
    rows = []
    for pair in c.pairs:
        a, b = pair.spec, pair.model
        if a is None or b is None:
            known = a or b
            rows.append([str(pair.position), a.layer if a else "—", b.layer if b else "—", dims(known.shape),
                         f"{known.madds:,}", f"{known.params:,}", f"{known.bn_params:,}", "MISMATCH: missing"])
            continue
        shape = dims(a.shape) if a.shape == b.shape else f"{dims(a.shape)} ≠ {dims(b.shape)}"
        rows.append([str(pair.position), a.layer, b.layer, shape, _pair(a.madds, b.madds), _pair(a.params, b.params),
                     _pair(a.bn_params, b.bn_params), "ok" if pair.match else "MISMATCH: " + ", ".join(
                         pair.differences)])
    ours, theirs = c.totals("spec"), c.totals("model")
    verdict = (f"every weighted layer agrees with {c.source}" if c.match else
               f"{len(c.mismatches)} of {len(c.pairs)} weighted layers differ; the first: "
               + c.mismatches[0].describe(c.source))
    notes = [f"{verdict}. Model side: {c.counter}; a ≠ b reads spec ≠ model."]
    if c.folded:
        notes.append("The model has no BatchNorm (its exporter folded it into the convolutions' biases): the spec "
                     "is compared as deployed, each BatchNorm folded into a bias.")
    return Grid(
        title=f"{describe(c.config)} vs {c.source}",
        headers=["#", "spec layer", "model layer", "out C×H×W", "mult-adds", "params", "bn params", "status"],
        right={0, 4, 5, 6},
        rows=rows,
        totals=["", "total", "", "", _pair(ours[0], theirs[0]), _pair(ours[1], theirs[1]),
                _pair(ours[2], theirs[2]), "ok" if c.match else "MISMATCH"],
        notes=notes,
    )


def render_comparison(c, fmt: str, out: IO[str]) -> None:
    """A spec against the real model (verify --against)."""
    if fmt == "json":
        dump_json({"schema": "mnsize.verify/1", **comparison_json(c)}, out)
    else:
        write_grid(comparison_grid(c), "table", out, row_style=lambda row: None if row[-1] == "ok" else "bold red")
