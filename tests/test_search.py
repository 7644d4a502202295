"""The grid search: exact against brute force, budgets respected, optimal."""

from __future__ import annotations

import json
import random
from fractions import Fraction

import pytest
from click.testing import CliRunner
from hypothesis import example, given, settings
from hypothesis import strategies as st

from mnsize import SpecError, builtin_names, count, expand, load_spec, parse_spec
from mnsize.cli import cli
from mnsize.costs import COST_FORMULAS, Counts
from mnsize.metrics import Limits
from mnsize.search import fit, frontier
from mnsize.sweep import deployed_params, evaluate, peak_activations
from mnsize.units import UnitError, parse_alphas, parse_resolutions

from .conftest import spec_text

SPECS = {name: load_spec(name) for name in builtin_names()}
PAPER_ALPHAS = [Fraction(a) for a in ("1.0", "0.75", "0.5", "0.25")]
PAPER_RES = [(r, r) for r in (224, 192, 160, 128)]


def brute(spec, alpha, res, dtype_bytes=4, classes=None):
    layers = expand(spec, alpha, res, classes)
    report = count(layers)
    return (report.madds, report.params, report.bn_params, dtype_bytes * deployed_params(layers, report.params),
            dtype_bytes * peak_activations(layers))


def figures(c):
    return (c.madds, c.params, c.bn_params, c.size_bytes, c.activation_bytes)


@pytest.mark.parametrize("name", sorted(SPECS))
@settings(max_examples=10, deadline=None)
@given(alphas=st.lists(st.integers(5, 140), min_size=1, max_size=4, unique=True),
       sides=st.lists(st.tuples(st.integers(16, 520), st.integers(16, 520)), min_size=1, max_size=4, unique=True))
@example(alphas=[5, 8, 100], sides=[(16, 16)])  # V3 drops expansions at small alpha: the layer list changes
def test_grid_equals_brute_force(name, alphas, sides):
    spec = SPECS[name]
    alphas = [Fraction(a, 100) for a in alphas]
    if any(row.padding for row in spec.layers):  # Keras's V1 takes 31 x 31 and up (Keras itself, 32)
        sides = [side for side in sides if min(side) >= 31] or [(31, 31)]
    for c in evaluate(spec, alphas, sides, dtype="int8"):
        assert figures(c) == brute(spec, c.alpha, c.resolution, dtype_bytes=1)


def test_a_resolution_too_small_for_explicit_padding_is_refused_as_expand_refuses_it():
    spec = SPECS["mobilenet_v1_keras"]
    with pytest.raises(SpecError) as expanding:
        expand(spec, "0.5", (30, 64))
    with pytest.raises(SpecError) as searching:
        list(evaluate(spec, [Fraction(1, 2)], [(64, 64), (30, 64)]))
    assert str(searching.value) == str(expanding.value)
    assert ("key 'padding': a 1x4 input (of a 30x64 image) padded by [0, 1] is smaller than the kernel's span "
            "of 3") in str(expanding.value)


def test_flattening_fc_and_classes():
    """An fc on a spatial input: its weights grow with the input area (affine in it)."""
    spec = parse_spec(spec_text("  - {kind: conv, kernel: 3, out: 8, stride: 4}\n  - {kind: fc, out: 20}\n"
                                "  - {kind: fc}\n"), "flat.yaml")
    cands = evaluate(spec, [Fraction(1), Fraction(1, 2)], [(32, 32), (33, 17), (8, 8)], classes=7)
    for c in cands:
        assert figures(c) == brute(spec, c.alpha, c.resolution, classes=7)


def test_a_formula_of_no_simple_shape_is_evaluated_directly(monkeypatch):
    original = COST_FORMULAS["dw"]

    def quadratic(layer):  # depends on the square of the output area
        cost = original(layer)
        area = layer.out_shape[1] * layer.out_shape[2]
        return Counts(cost.madds + area * area, cost.params, cost.bn_params)

    monkeypatch.setitem(COST_FORMULAS, "dw", quadratic)
    spec = SPECS["mobilenet_v1"]
    for c in evaluate(spec, PAPER_ALPHAS[:2], [(64, 64), (97, 131)]):
        assert figures(c) == brute(spec, c.alpha, c.resolution)


def test_paper_grid_150m_picks_half_mobilenet_224():
    cands = evaluate(SPECS["mobilenet_v1"], PAPER_ALPHAS, PAPER_RES)
    result = fit(cands, Limits(madds=150_000_000))
    assert (result.best.alpha, result.best.resolution, result.best.madds) == (Fraction(1, 2), (224, 224),
                                                                             149_497_088)
    by_params = fit(cands, Limits(params=1_500_000))
    assert (by_params.best.alpha, by_params.best.resolution) == (Fraction(1, 2), (224, 224))


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 10**6), madds=st.integers(5_000_000, 600_000_000),
       params=st.one_of(st.none(), st.integers(300_000, 5_000_000)),
       acts=st.one_of(st.none(), st.integers(100_000, 4_000_000)), objective=st.sampled_from(["madds", "params"]))
def test_fit_is_optimal_and_respects_budgets(seed, madds, params, acts, objective):
    rng = random.Random(seed)
    alphas = sorted({Fraction(rng.randint(10, 140), 100) for _ in range(5)})
    sides = sorted({(rng.randint(4, 40) * 8,) * 2 for _ in range(5)})
    cands = evaluate(SPECS["mobilenet_v1"], alphas, sides)
    budgets = Limits(madds=madds, params=params, activations=acts)
    result = fit(cands, budgets, objective, top=3)
    feasible = [c for c in cands if c.madds <= madds and (params is None or c.params <= params)
                and (acts is None or c.activation_bytes <= acts)]
    assert result.feasible == len(feasible)
    if not feasible:
        assert result.best is None and result.smallest == min(cands, key=lambda c: (c.madds, c.params, c.alpha))
        return
    key = (lambda c: c.madds) if objective == "madds" else (lambda c: c.params)
    assert key(result.best) == max(key(c) for c in feasible)
    assert all(budgets.admit(c) for c in result.ranked + result.frontier)
    for c in result.frontier:  # nobody feasible beats a frontier point on both
        assert not any(d.madds >= c.madds and d.params >= c.params and (d.madds, d.params) != (c.madds, c.params)
                       for d in feasible)
    for c in feasible:  # and every feasible point is matched or beaten by the frontier
        assert any(f.madds >= c.madds and f.params >= c.params for f in result.frontier)


def test_ties_prefer_larger_alpha_then_resolution(tiny):
    spec = tiny("  - {kind: conv, kernel: 3, out: 8}\n")  # floor rule: 0.50 and 0.55 both give 4 channels
    cands = evaluate(spec, [Fraction(1, 2), Fraction(11, 20)], [(32, 32)])
    assert cands[0].madds == cands[1].madds
    assert fit(cands, Limits(madds=10**9)).best.alpha == Fraction(11, 20)
    assert len(frontier(cands)) == 1


def test_top1_objective_ranks_published_only():
    from mnsize.published import top1_table

    cands = evaluate(SPECS["mobilenet_v1"], [Fraction(1, 2), Fraction(51, 100)], PAPER_RES,
                     top1=top1_table("mobilenet_v1"))
    result = fit(cands, Limits(madds=150_000_000), objective="top1")
    assert result.best.top1 == 63.3
    assert all(c.top1 is not None for c in result.ranked)
    assert result.unranked and all(c.top1 is None for c in result.unranked)


# --------------------------------------------------------------------------- grids


@pytest.mark.parametrize("text,count,first,last", [
    ("0.05:1.40:0.01", 136, Fraction(1, 20), Fraction(7, 5)),
    ("0.25:1.00:0.05", 16, Fraction(1, 4), Fraction(1)),
    ("0.25,0.5,0.75,1.0", 4, Fraction(1, 4), Fraction(1)),
    ("0.3:1:0.3", 3, Fraction(3, 10), Fraction(9, 10)),  # stop not on a step: not included
])
def test_alpha_grids(text, count, first, last):
    values = parse_alphas(text)
    assert (len(values), values[0], values[-1]) == (count, first, last)


def test_resolution_grids():
    assert len(parse_resolutions("32:512:8")) == 61
    assert parse_resolutions("96:224:16")[-1] == (224, 224)
    assert parse_resolutions("224, 320x240") == [(224, 224), (320, 240)]


@pytest.mark.parametrize("parse,text,message", [
    (parse_alphas, "1.0:0.5:0.1", "runs backwards"),
    (parse_alphas, "", "no values"),
    (parse_alphas, "0.1:1:0", "step must be positive"),
    (parse_alphas, "0.1:1", "start:stop:step"),
    (parse_alphas, "abc", "not a number"),
    (parse_alphas, "0,0.5", "must be > 0"),
    (parse_alphas, "0.0001:100:0.0001", "at most 10,000"),
    (parse_resolutions, "512:32:8", "runs backwards"),
    (parse_resolutions, "224x", "not a whole number"),
    (parse_resolutions, "0,224", "between 1 and"),
])
def test_bad_grids(parse, text, message):
    with pytest.raises(UnitError, match=message):
        parse(text)


# --------------------------------------------------------------------------- the commands


def run(*args):
    return CliRunner().invoke(cli, list(args))


def test_fit_json_schema():
    result = run("fit", "--max-madds", "150M", "--alphas", "1.0,0.75,0.5,0.25", "--resolutions", "224,192,160,128",
                 "--format", "json")
    assert result.exit_code == 0, result.stderr
    data = json.loads(result.stdout)
    assert list(data["best"]) == ["model", "alpha", "resolution", "madds", "params", "bn_params", "size_bytes",
                                  "activation_bytes", "top1"]
    assert data["best"]["alpha"] == 0.5 and data["best"]["resolution"] == [224, 224]
    assert data["best"]["madds"] == 149_497_088 and data["best"]["top1"] == 63.3
    assert data["searched"]["count"] == 16 and data["budgets"] == {"madds": 150_000_000}
    assert data["candidates"][0] == data["best"]
    assert {"candidates", "frontier", "searched", "budgets"} <= set(data)


def test_fit_default_grid_and_units():
    data = json.loads(run("fit", "--max-size", "2MB", "--dtype", "int8", "--max-activations", "512KiB",
                          "--format", "json").stdout)
    assert data["searched"]["count"] == 16 * 9
    best = data["best"]
    assert best["size_bytes"] <= 2_000_000 and best["activation_bytes"] <= 524_288
    text = run("fit", "--max-madds", "150M").stdout
    assert "Best by mult-adds: mobilenet_v1 α 0.5 224×224" in text and "Pareto frontier" in text


def test_fit_compares_families():
    data = json.loads(run("fit", "--model", "mobilenet_v1", "--model", "mobilenet_v1_shallow", "--max-madds", "300M",
                          "--format", "json").stdout)
    assert data["searched"]["models"] == ["mobilenet_v1", "mobilenet_v1_shallow"]
    assert data["searched"]["count"] == 2 * 144
    assert {c["model"] for c in data["frontier"]} <= {"mobilenet_v1", "mobilenet_v1_shallow"}


def test_nothing_fits_exits_1_naming_the_smallest():
    result = run("fit", "--max-madds", "1M", "--max-params", "100k")
    assert result.exit_code == 1
    (line,) = result.stderr.splitlines()
    assert line.startswith("mnsize fit: nothing fits: the smallest candidate, mobilenet_v1 α 0.25 96×96, misses "
                           "mult-adds 7.7M > 1.0M")
    assert "params 464.60k > 100.00k" in line
    data = json.loads(run("fit", "--max-madds", "1M", "--format", "json").stdout)
    assert data["best"] is None and data["smallest"]["alpha"] == 0.25


@pytest.mark.parametrize("args,fragment", [
    ([], "give at least one budget"),
    (["--max-madds", "150X"], "unknown unit 'X'"),
    (["--max-madds", "-5M"], "--max-madds"),
    (["--max-madds", ""], "--max-madds"),
    (["--max-size", "2MBs"], "--max-size"),
    (["--max-madds", "1M", "--alphas", "1:0.5:0.1"], "runs backwards"),
    (["--max-madds", "1M", "--resolutions", ""], "no values"),
    (["--max-madds", "1M", "--model", "nope"], "unknown model"),
    (["--max-madds", "1M", "--objective", "speed"], "--objective"),
    (["--max-madds", "1M", "--top", "0"], "--top"),
])
def test_fit_bad_input(args, fragment):
    result = run("fit", *args)
    assert result.exit_code == 2
    assert result.stdout == ""
    (line,) = result.stderr.splitlines()
    assert line.startswith("mnsize fit: error: ") and fragment in line


def test_grid_command():
    data = json.loads(run("grid", "--format", "json").stdout)
    assert data["alphas"] == [1.0, 0.75, 0.5, 0.25]
    cell = next(c for c in data["cells"] if c["alpha"] == 0.5 and c["resolution"] == [160, 160])
    assert cell == {"alpha": 0.5, "resolution": [160, 160], "value": 76_524_800, "top1": 59.1}
    text = run("grid").stdout
    assert "149.5M · 63.3%" in text
    csv = run("grid", "--metric", "params", "--format", "csv").stdout.splitlines()
    assert csv[0] == "alpha,224,192,160,128" and csv[3] == "0.5,1320648,1320648,1320648,1320648"
    md = run("grid", "--metric", "size", "--dtype", "int8", "--format", "markdown").stdout
    assert "| α | 224 |" in md


@pytest.mark.parametrize("args,fragment", [
    (["--metric", "flops"], "--metric"),
    (["--alphas", "x"], "not a number"),
    (["--resolutions", "0"], "between 1 and"),
    (["--dtype", "fp8"], "--dtype"),
])
def test_grid_bad_input(args, fragment):
    result = run("grid", *args)
    assert result.exit_code == 2 and result.stdout == ""
    (line,) = result.stderr.splitlines()
    assert line.startswith("mnsize grid: error: ") and fragment in line


def test_plot_text_and_picture(tmp_path):
    text = run("plot", "--max-madds", "150M")
    assert text.exit_code == 0
    assert "◆" in text.stdout and "149.5M" in text.stdout
    pytest.importorskip("matplotlib", reason="plot --out needs matplotlib: pip install 'mnsize[plot]'")
    for suffix in (".png", ".svg"):
        out = tmp_path / f"plot{suffix}"
        result = run("plot", "--max-madds", "150M", "--out", str(out))
        assert result.exit_code == 0, result.stderr
        assert out.stat().st_size > 10_000
    assert (tmp_path / "plot.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.parametrize("args,fragment", [
    (["--out", "plot.jpg"], "file type must be one of .png, .svg, .pdf"),
    (["--out", "no/such/dir/plot.png"], "no such folder"),
    (["--model", "mobilenet_v1_conv"], "no published checkpoints"),
])
def test_plot_bad_input_writes_nothing(tmp_path, monkeypatch, args, fragment):
    monkeypatch.chdir(tmp_path)
    result = run("plot", *args)
    assert result.exit_code == 2
    assert fragment in result.stderr and len(result.stderr.splitlines()) == 1
    assert list(tmp_path.iterdir()) == []


def test_unranked_lists_the_largest_and_counts_them_all():
    """With --objective top1, fit lists at most --top unranked candidates but
    counts every feasible one without a published top-1 (brute force)."""
    from mnsize.published import top1_table

    alphas, sides = "0.5,0.55,0.6,0.65", "224,192,160,128"
    published = top1_table("mobilenet_v1")
    expected = sum(1 for a in ("0.5", "0.55", "0.6", "0.65") for s in (224, 192, 160, 128)
                   if (Fraction(a), (s, s)) not in published and brute(SPECS["mobilenet_v1"], a, (s, s))[0]
                   <= 150_000_000)
    result = run("fit", "--max-madds", "150M", "--objective", "top1", "--top", "2", "--alphas", alphas,
                 "--resolutions", sides, "--format", "json")
    assert result.exit_code == 0, result.stderr
    data = json.loads(result.stdout)
    assert expected > 2 and data["unranked_count"] == expected and len(data["unranked"]) == 2
    text = run("fit", "--max-madds", "150M", "--objective", "top1", "--top", "2", "--alphas", alphas,
               "--resolutions", sides).stdout
    assert f"{expected} candidates within budget have no published top-1" in " ".join(text.split())
