"""Rendering of the grid and fit reports (the search's output)."""

from __future__ import annotations

from typing import IO

from .base import Grid, as_text, dump_json, format_alpha, make_console, write_grid
from ..metrics import COUNTED, METRICS, Limits
from ..search import Fit
from ..sweep import Candidate
from ..text import printable
from ..units import format_bytes, format_count

def _res(resolution: tuple[int, int]) -> str:
    h, w = resolution
    return f"{h}" if h == w else f"{h}x{w}"


def candidate_json(c: Candidate) -> dict:
    data = {"model": c.model, "alpha": float(c.alpha), "resolution": list(c.resolution), "madds": c.madds,
            "params": c.params, "bn_params": c.bn_params, "size_bytes": c.size_bytes,
            "activation_bytes": c.activation_bytes, "top1": c.top1}
    if c.latency_us is not None:  # with a latency profile
        data["predicted_ms"] = c.latency_us / 1000
    return data


# --------------------------------------------------------------------------- grid


def render_grid(model: str, metric: str, dtype: str, alphas, resolutions, candidates: list[Candidate], fmt: str,
                out: IO[str], convention: str = "paper") -> None:
    cells = {(c.alpha, c.resolution): c for c in candidates}
    if fmt == "json":
        dump_json({"schema": "mnsize.grid/1", "model": model, "metric": metric, "convention": convention,
                   "dtype": dtype if METRICS[metric].per_dtype else None,
                   "alphas": [float(a) for a in alphas], "resolutions": [list(r) for r in resolutions],
                   "cells": [{"alpha": float(c.alpha), "resolution": list(c.resolution), "value": c.metric(metric),
                              "top1": c.top1} for c in candidates]}, out)
        return
    rows = []
    for a in alphas:
        row = [format_alpha(a)]
        for r in resolutions:
            c = cells[(a, r)]
            text = METRICS[metric].format(c.metric(metric))
            row.append(f"{text} · {c.top1:.1f}%" if c.top1 is not None else text)
        rows.append(row)
    unit = f" ({dtype})" if METRICS[metric].per_dtype else ""
    notes = []
    if any(c.top1 is not None for c in candidates):
        notes.append("· n% is the published ImageNet top-1 of the released checkpoint (configs/published.yaml).")
    write_grid(Grid(
        title=f"{model}: {METRICS[metric].label}{unit}, rows α, columns resolution"
              + ("" if convention == "paper" else f", counted as {convention} counts"),
        headers=["α"] + [_res(r) for r in resolutions],
        right=set(range(1, len(resolutions) + 1)),
        rows=rows,
        csv_headers=["alpha"] + [_res(r) for r in resolutions],
        csv_rows=[[format_alpha(a)] + [cells[(a, r)].metric(metric) for r in resolutions] for a in alphas],
        notes=notes), fmt, out)


# --------------------------------------------------------------------------- fit


def usage(c: Candidate, limits: Limits) -> list[dict]:
    return [{"metric": metric, "value": c.metric(metric), "limit": limit,
             "used": round(c.metric(metric) / limit, 6) if limit else None} for metric, limit in limits.items()]


def _budget_line(c: Candidate, limits: Limits) -> str:
    parts = []
    for u in usage(c, limits):
        share = f"{100 * u['used']:.1f}%" if u["used"] is not None else "-"
        parts.append(f"{METRICS[u['metric']].label} {METRICS[u['metric']].format(u['value'])} of "
                     f"{METRICS[u['metric']].format(u['limit'])} ({share})")
    return "; ".join(parts)


def misses(c: Candidate, limits: Limits) -> list[str]:
    """How far ``c`` is over each budget it breaks."""
    lines = []
    for metric, limit in limits.items():
        value = c.metric(metric)
        if value > limit:
            over = value - limit
            share = f", {100 * over / limit:.1f}% over" if limit else ""
            lines.append(f"{METRICS[metric].label} {METRICS[metric].format(value)} > {METRICS[metric].format(limit)} "
                         f"(by {METRICS[metric].format(over)}{share})")
    return lines


def describe_candidate(c: Candidate) -> str:
    """The candidate in a few words; the model's name, the user's text, escaped."""
    return f"{printable(c.model)} α {format_alpha(c.alpha)} {c.resolution[0]}×{c.resolution[1]}"


def _candidate_rows(cands, numbered: bool = True, measured: dict | None = None) -> list[list[str]]:
    rows = []
    for i, c in enumerate(cands, 1):
        row = ([str(i)] if numbered else []) + [
            c.model, format_alpha(c.alpha), _res(c.resolution), f"{c.madds:,}", f"{c.params:,}",
            format_bytes(c.size_bytes), format_bytes(c.activation_bytes),
            f"{c.top1:.1f}" if c.top1 is not None else "-"]
        if c.latency_us is not None:
            row.append(f"{c.latency_us / 1000:.2f}")
            if measured is not None:
                row.append(f"{measured[c]:.2f}" if c in measured else "-")
        rows.append(row)
    return rows


CANDIDATE_HEADERS = ["model", "α", "res", *(METRICS[name].label for name in COUNTED), "top-1 %"]


def _headers(cands, numbered: bool, measured) -> tuple[list[str], set[int]]:
    headers = (["#"] if numbered else []) + CANDIDATE_HEADERS
    if cands and cands[0].latency_us is not None:
        headers.append("predicted ms")
        if measured is not None:
            headers.append("measured ms")
    first = 4 if numbered else 3
    return headers, set(range(first, len(headers))) | ({0} if numbered else set())


def render_fit(result: Fit, limits: Limits, searched: dict, dtype: str, objective: str, fmt: str,
               out: IO[str], measured: dict | None = None) -> None:
    best = result.best
    if fmt == "json":
        dump_json({
            "schema": "mnsize.fit/1",
            "best": candidate_json(best) if best else None,
            "candidates": [candidate_json(c) for c in result.ranked],
            "unranked": [candidate_json(c) for c in result.unranked],
            "unranked_count": result.unranked_count,
            "frontier": [candidate_json(c) for c in result.frontier],
            "searched": searched,
            "feasible": result.feasible,
            "objective": objective,
            "dtype": dtype,
            "budgets": dict(limits.items()),
            "usage": usage(best, limits) if best else None,
            "smallest": candidate_json(result.smallest) if result.smallest else None,
            "misses": misses(result.smallest, limits) if result.smallest else [],
            "measured": [{**candidate_json(c), "measured_ms": round(ms, 4)} for c, ms in (measured or {}).items()],
        }, out)
        return
    console = make_console(out)

    def say(*parts: str) -> None:  # the user's text (model names) as text, never markup
        console.print(as_text("".join(parts), console), soft_wrap=True)

    counted = "" if searched.get("convention", "paper") == "paper" else f", counted as {searched['convention']} counts"
    say(f"Searched {result.searched:,} candidates ({', '.join(searched['models'])}: "
        f"{len(searched['alphas'])} α × {len(searched['resolutions'])} resolutions); "
        f"{result.feasible:,} within budget ({dtype} sizes{counted}).")
    if best is None and result.smallest is None:
        say(f"None of the {result.feasible:,} candidates within budget has a published top-1 to rank by; the "
            f"largest is {describe_candidate(result.unranked[0])}. Rank them with --objective madds or params.")
        return
    if best is None:
        smallest = result.smallest
        say(f"Nothing fits. The smallest candidate, {describe_candidate(smallest)}, misses: ",
            "; ".join(misses(smallest, limits)), ".")
        return
    ranking = "published top-1" if objective == "top1" else METRICS[objective].label
    headline = as_text(f"Best by {ranking}: {describe_candidate(best)}", console)
    headline.stylize("bold")
    headline.append(as_text(f": {best.madds:,} mult-adds, {best.params:,} params"
                            + (f", top-1 {best.top1:.1f}%" if best.top1 is not None else "") + ".", console))
    console.print(headline, soft_wrap=True)
    say("Budget use: ", _budget_line(best, limits), ".")
    # on a narrow terminal, the columns no budget is about go first
    spare = [metric for metric in ("activations", "size", "params") if limits.get(metric) is None]
    single = len(searched["models"]) == 1
    headers, right = _headers(result.ranked, True, measured)
    write_grid(Grid(title=f"Top {len(result.ranked)} by {ranking}", headers=headers, right=right,
                    rows=_candidate_rows(result.ranked, True, measured),
                    optional=_optional(headers, spare, single)), "table", out)
    if result.unranked:
        say(f"{result.unranked_count:,} candidates within budget have no published top-1 and are not "
            f"ranked; the largest is {describe_candidate(result.unranked[0])} "
            f"({format_count(result.unranked[0].madds)} mult-adds).")
    headers, right = _headers(result.frontier, False, None)
    write_grid(Grid(title="Pareto frontier: no other candidate within budget has more mult-adds and more params",
                    headers=headers, right=right, rows=_candidate_rows(result.frontier, numbered=False),
                    optional=_optional(headers, spare, single)), "table", out)


def _optional(headers: list[str], spare: list[str], single_model: bool) -> list[int]:
    """The columns a narrow terminal may go without: the model's name when only
    one was searched, then the metrics that no budget limits."""
    names = (["model"] if single_model else []) + spare
    return [headers.index(name) for name in names]


# --------------------------------------------------------------------------- plot (text)


def render_plot_text(points: list[Candidate], frontier: list[Candidate], limits: Limits, out: IO[str]) -> None:
    """A compact text chart: checkpoints by mult-adds, top-1 as a bar."""
    low, high = min(c.top1 for c in points), max(c.top1 for c in points)
    width = 30
    on_frontier = set(frontier)
    rows = []
    for c in sorted(points, key=lambda c: (c.madds, c.params)):
        bar = "█" * max(1, round(width * (c.top1 - low) / (high - low))) if high > low else "█"
        mark = "◆" if c in on_frontier else ""
        fits = "" if not limits else ("yes" if limits.admit(c) else "no")
        rows.append([c.model, format_alpha(c.alpha), _res(c.resolution), format_count(c.madds),
                     format_count(c.params, 2), f"{c.top1:.1f}", f"{bar} {mark}"] + ([fits] if fits else []))
    headers = ["model", "α", "res", "mult-adds", "params", "top-1 %", f"top-1 {low:.1f}–{high:.1f}%"]
    if limits:
        headers.append("fits")
    write_grid(Grid(title="Published checkpoints by mult-adds (◆ on the accuracy frontier)", headers=headers,
                    right={3, 4, 5}, rows=rows), "table", out)
