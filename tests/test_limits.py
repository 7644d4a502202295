"""Limits that hold: bounded work, a search whose memory stays flat, memory
guards and estimates that are upper bounds of what torch really uses, and
fit --measure timing the resolution it reports."""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
import textwrap
import tracemalloc
from fractions import Fraction

import pytest
from click.testing import CliRunner
from hypothesis import given, settings
from hypothesis import strategies as st

from mnsize import count, expand, load_spec
from mnsize import areas, bounds, search, sweep
from mnsize.cli import cli
from mnsize.costs import COST_FORMULAS, Counts
from mnsize.errors import MnsizeError
from mnsize.metrics import Limits
from mnsize.search import fit
from mnsize.sweep import Candidate, deployed_params, evaluate, peak_activations
from mnsize.units import parse_alphas, parse_resolutions

V1 = load_spec("mobilenet_v1")


def run(*args):
    return CliRunner().invoke(cli, list(args))


class Refused(Exception):
    """Raised by a stand-in for work that a refused command must never start."""


def no_work(*args, **kwargs):
    raise Refused


@pytest.fixture
def forbid_search(monkeypatch):
    """Any evaluation of candidates fails the test: a refusal must come first."""
    for name in ("evaluate", "blocks", "candidates"):
        monkeypatch.setattr(sweep, name, no_work)


def one_line_error(result, command: str) -> str:
    assert result.exit_code == 2, (result.exit_code, result.output, result.exception)
    assert result.stdout == ""
    (line,) = result.stderr.splitlines()
    assert line.startswith(f"mnsize {command}: error: ")
    return line


# --------------------------------------------------------------------------- bounded work


def test_fit_refuses_more_alphas_than_it_expands_in_seconds(forbid_search):
    """The issue's 10^4 x 10^4 run, refused before any work."""
    line = one_line_error(run("fit", "--max-madds", "150M", "--alphas", "0.01:100:0.01",
                              "--resolutions", "1:10000:1"), "fit")
    layers = len(expand(V1, 1, (1, 1)))
    assert f"10,000 alphas × {layers} layers" in line
    assert f"{bounds.MAX_LAYER_EXPANSIONS:,} layer expansions" in line and "--alphas" in line


def test_fit_refuses_more_candidates_x_layers_than_the_bound(forbid_search):
    alphas, resolutions = parse_alphas("0.01:50:0.01"), parse_resolutions("1:10000:1")
    layers = len(expand(V1, 1, (1, 1)))
    assert len(alphas) * layers <= bounds.MAX_LAYER_EXPANSIONS  # so it is the candidates that are refused
    assert len(alphas) * len(resolutions) * layers > bounds.MAX_LAYER_EVALUATIONS
    line = one_line_error(run("fit", "--max-madds", "150M", "--alphas", "0.01:50:0.01",
                              "--resolutions", "1:10000:1"), "fit")
    assert f"{len(alphas) * len(resolutions):,} candidates × {layers} layers" in line
    assert f"{bounds.MAX_LAYER_EVALUATIONS:,} layer evaluations" in line and "--resolutions" in line


def test_fit_counts_every_model_and_the_profile_against_the_bounds(tmp_path):
    shallow = load_spec("mobilenet_v1_shallow")
    alphas, resolutions = parse_alphas("0.01:1:0.01"), parse_resolutions("1:10000:1")
    search.check_work([V1], alphas, resolutions)  # one model fits within the bounds
    layers = len(expand(V1, alphas[0], (1, 1))) + len(expand(shallow, alphas[0], (1, 1)))
    many = [V1, shallow] * (bounds.MAX_LAYER_EVALUATIONS // (len(alphas) * len(resolutions) * layers) + 1)
    with pytest.raises(MnsizeError, match="candidates × 19 to 29 layers"):
        search.check_work(many, alphas, resolutions)
    with pytest.raises(MnsizeError, match=f"{bounds.MAX_PROFILED_LAYER_EXPANSIONS:,} layer expansions one "
                                          "search with a latency profile"):
        search.check_work([V1], parse_alphas("0.01:10:0.01"), resolutions[:1], profile=object())


def test_the_benchmarked_search_is_within_the_bounds():
    """fit over 10^6 candidates (benchmarks/fit_scale.py) is a run the bounds allow."""
    alphas, resolutions = parse_alphas("0.01:10:0.01"), parse_resolutions("1:1000:1")
    assert len(alphas) * len(resolutions) == 10**6
    search.check_work([V1], alphas, resolutions)


def test_grid_refuses_more_cells_than_it_shows(forbid_search):
    line = one_line_error(run("grid", "--alphas", "0.01:100:0.01", "--resolutions", "1:100:1"), "grid")
    assert "10,000 alphas × 100 resolutions is 1,000,000 cells" in line
    assert f"{bounds.MAX_GRID_CELLS:,}" in line


def test_grid_bound_is_on_cells():
    search.check_cells(parse_alphas("0.01:1:0.01"), parse_resolutions("1:100:1"))
    with pytest.raises(MnsizeError, match="101 alphas × 100 resolutions is 10,100 cells"):
        search.check_cells(parse_alphas("0.01:1.01:0.01"), parse_resolutions("1:100:1"))


# --------------------------------------------------------------------------- a streaming search


def test_fit_takes_candidates_one_at_a_time():
    cands = evaluate(V1, parse_alphas("0.25:1:0.05"), parse_resolutions("96:224:16"))
    budgets = Limits(madds=150_000_000, params=3_000_000)
    assert fit(iter(cands), budgets) == fit(cands, budgets)
    assert fit(sweep.blocks(V1, parse_alphas("0.25:1:0.05"), parse_resolutions("96:224:16")), budgets) \
        == fit(cands, budgets)


def _fit_peak_bytes(alphas: str) -> int:
    tracemalloc.start()
    try:
        result = run("fit", "--max-madds", "150M", "--alphas", alphas, "--resolutions", "32:431:2", "-f", "json")
        assert result.exit_code == 0, result.output
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_fit_memory_stays_flat_however_many_candidates():
    _fit_peak_bytes("0.5:0.51:0.01")  # imports and caches, before anything is measured
    few = _fit_peak_bytes("0.10:0.19:0.01")   # 10 alphas x 200 resolutions
    many = _fit_peak_bytes("0.10:1.09:0.01")  # 100 alphas x 200 resolutions
    assert many < few + 512 * 1024, (few, many)


def _reference_fit(cands: list[Candidate], budgets: Limits, objective: str, top: int):
    """The search as a sort over every candidate: what the streaming one must equal."""
    feasible = [c for c in cands if budgets.admit(c)]
    size = lambda c: (c.madds, c.alpha, c.resolution[0] * c.resolution[1], c.resolution)  # noqa: E731
    key = {"madds": size, "params": lambda c: (c.params, *size(c)), "top1": lambda c: (c.top1, *size(c))}[objective]
    rankable = [c for c in feasible if objective != "top1" or c.top1 is not None]
    unranked = sorted((c for c in feasible if objective == "top1" and c.top1 is None), key=size, reverse=True)
    front, most = [], -1
    for c in sorted(feasible, key=lambda c: (-c.madds, -c.params, -c.alpha, -c.resolution[0] * c.resolution[1])):
        if c.params > most:
            front.append(c)
            most = c.params
    smallest = None if feasible else min(cands, key=lambda c: (c.madds, c.params, c.alpha))
    return (len(cands), len(feasible), sorted(rankable, key=key, reverse=True)[:top], unranked[:top], len(unranked),
            front, smallest)


small_ints = st.integers(1, 6)


@settings(max_examples=150, deadline=None)
@given(rows=st.lists(st.tuples(st.sampled_from(["a", "b"]), st.integers(1, 3), st.integers(1, 3), st.integers(1, 3),
                               small_ints, small_ints, small_ints, st.one_of(st.none(), st.sampled_from([60.0, 70.0]))),
                     min_size=1, max_size=40),
       madds=st.one_of(st.none(), st.integers(0, 7)), params=st.one_of(st.none(), st.integers(0, 7)),
       acts=st.one_of(st.none(), st.integers(0, 7)), objective=st.sampled_from(["madds", "params", "top1"]),
       top=st.integers(1, 4))
def test_streaming_fit_equals_sorting_everything(rows, madds, params, acts, objective, top):
    """Ties everywhere (few distinct values), candidates in any order: the same
    best, runners-up, frontier, counts and smallest as a sort of them all."""
    cands = [Candidate(model, Fraction(alpha, 4), (h, w), m, p, 0, 4 * p, a, top1)
             for model, alpha, h, w, m, p, a, top1 in rows]
    budgets = Limits(madds=madds, params=params, activations=acts)
    result = fit(cands, budgets, objective, top)
    searched, feasible, ranked, unranked, unranked_count, front, smallest = _reference_fit(cands, budgets, objective,
                                                                                           top)
    assert (result.searched, result.feasible) == (searched, feasible)
    assert list(result.ranked) == ranked and list(result.frontier) == front and result.smallest == smallest
    assert list(result.unranked) == unranked and result.unranked_count == unranked_count


def brute(spec, alpha, res, convention=None):
    layers = expand(spec, alpha, res)
    report = count(layers, convention)
    return (report.madds, report.params, report.bn_params, 4 * deployed_params(layers, report.params),
            4 * peak_activations(layers))


def figures(c):
    return (c.madds, c.params, c.bn_params, c.size_bytes, c.activation_bytes)


def test_counts_beyond_64_bits_are_exact():
    """alpha 100 at a million pixels a side: sums no machine word holds."""
    spec = load_spec("mobilenet_v2")
    for c in evaluate(spec, [Fraction(100), Fraction(7, 3)], [(999_983, 1_000_000), (1, 1), (65_537, 3)]):
        assert figures(c) == brute(spec, c.alpha, c.resolution)
    assert max(c.madds for c in evaluate(spec, [Fraction(100)], [(1_000_000, 1_000_000)])) > 2**63


def test_a_cost_that_falls_with_area_is_exact(monkeypatch):
    original = COST_FORMULAS["pw"]

    def shrinking(layer):  # fewer mult-adds the larger the output: a negative slope
        cost = original(layer)
        return Counts(10**9 - 3 * layer.out_shape[1] * layer.out_shape[2], cost.params, cost.bn_params)

    monkeypatch.setitem(COST_FORMULAS, "pw", shrinking)
    for c in evaluate(V1, [Fraction(1, 2), Fraction(1)], [(64, 64), (97, 131), (1, 1)]):
        assert figures(c) == brute(V1, c.alpha, c.resolution)


def test_spatial_sizes_without_the_stride_rule_are_exact(monkeypatch):
    """Where spatial sizes do not follow SAME padding, every resolution is expanded."""
    monkeypatch.setattr(areas, "_divisors", lambda *args: None)
    spec = load_spec("mobilenet_v3_small")
    for c in evaluate(spec, [Fraction(1, 2), Fraction(1)], [(64, 64), (97, 131), (1, 1), (224, 224)]):
        assert figures(c) == brute(spec, c.alpha, c.resolution)


def test_every_convention_is_exact_over_odd_sizes():
    from mnsize.conventions import CONVENTIONS

    spec = load_spec("mobilenet_v3_large")
    rng = random.Random(13)
    sides = [(rng.randint(1, 700), rng.randint(1, 700)) for _ in range(6)]
    for convention in (CONVENTIONS.values() if isinstance(CONVENTIONS, dict) else CONVENTIONS):
        for c in evaluate(spec, [Fraction(7, 20), Fraction(1)], sides, convention=convention):
            layers = expand(spec, c.alpha, c.resolution)
            report = count(layers, convention)
            assert (c.madds, c.params, c.bn_params, c.activation_bytes) == \
                (report.madds, report.params, report.bn_params, 4 * peak_activations(layers)), convention.name


# --------------------------------------------------------------------------- verify --device cpu


@pytest.fixture
def forbid_build(monkeypatch):
    pytest.importorskip("torch", reason="verify needs torch: pip install 'mnsize[torch]'")
    import mnsize.nn

    monkeypatch.setattr(mnsize.nn, "build_layers", no_work)


@pytest.mark.parametrize("res", ["1000000", "6000"])
def test_verify_on_cpu_refuses_a_forward_pass_beyond_its_memory(forbid_build, res):
    line = one_line_error(run("verify", "--device", "cpu", "--res", res), "verify")
    assert "GiB" in line and "--device meta" in line


def test_verify_memory_bound_is_an_upper_bound_of_the_real_peak():
    """The bound that refuses --device cpu runs holds for a moderate one, measured."""
    pytest.importorskip("torch", reason="verify needs torch: pip install 'mnsize[torch]'")
    from mnsize.crosscheck import forward_bytes

    growth = _peak_growth("verify", "mobilenet_v2", 768, threads=1)
    assert forward_bytes(expand(load_spec("mobilenet_v2"), 1, (768, 768))) >= growth


def test_verify_on_meta_stays_unbounded_for_huge_models(monkeypatch):
    pytest.importorskip("torch", reason="verify needs torch: pip install 'mnsize[torch]'")
    import mnsize.crosscheck as verify

    layers = expand(V1, 100, (1_000_000, 1_000_000))
    assert verify.forward_bytes(layers) > bounds.MAX_CPU_BYTES
    built = []
    monkeypatch.setattr(verify, "count_torch", lambda *args, **kwargs: built.append(args) or no_work())
    with pytest.raises(Refused):  # got past every check to the counting
        verify.verify_grid(V1, ["100"], [(1_000_000, 1_000_000)], device="meta")


@pytest.mark.parametrize("classes", [2**62, 2**60, 2**59, 2**55])
def test_verify_refuses_classes_beyond_pytorch_sizes(forbid_build, classes):
    from mnsize.crosscheck import verify_grid

    with pytest.raises(MnsizeError, match="beyond PyTorch's sizes"):
        verify_grid(V1, ["1.0"], [(224, 224)], classes=classes, device="meta")


# --------------------------------------------------------------------------- bench's memory estimate

CHILD = textwrap.dedent("""
    import json, os, sys
    from mnsize.expand import deployed, expand
    from mnsize.models import load_spec
    mode, name, res, threads = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
    spec = load_spec(name)

    def forward(side):
        layers = expand(spec, 1, (side, side))
        if mode == "bench":
            from mnsize.bench import time_layers
            time_layers(layers, (spec.in_channels, side, side), threads=threads, runs=1, warmup=0)
        else:
            import torch
            from mnsize.crosscheck import verify_grid
            torch.set_num_threads(threads)
            verify_grid(spec, [1], [(side, side)], device="cpu")

    forward(32)  # torch's own lazy set-up, before anything is measured
    # the peak so far (imports) would hide the growth: reset it to what is resident now
    with open("/proc/self/clear_refs", "w") as file:
        file.write("5")
    rss = int(open("/proc/self/statm").read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    forward(res)
    # VmHWM is the peak that clear_refs reset; getrusage's maxrss also keeps the
    # peak of any thread that exited since start-up (an import-time peak)
    status = dict(line.split(":", 1) for line in open("/proc/self/status"))
    print(json.dumps(int(status["VmHWM"].split()[0]) * 1024 - rss))
""")


def _peak_growth(mode: str, model: str, res: int, threads: int) -> int:
    """How far a real forward pass raises the peak resident memory of a fresh process."""
    if not sys.platform.startswith("linux"):
        pytest.skip("peak memory is read from /proc and getrusage's kilobytes")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    out = subprocess.run([sys.executable, "-c", CHILD, mode, model, str(res), str(threads)], capture_output=True,
                         text=True, env=env, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    return json.loads(out.stdout.splitlines()[-1])


def test_bench_memory_estimate_is_an_upper_bound_of_the_real_peak():
    """Inverted residuals keep their input for the add while the expanded
    hidden layers and the kernels' reordered copies are live."""
    pytest.importorskip("torch", reason="bench needs torch: pip install 'mnsize[torch]'")
    from mnsize.bench import memory_bytes

    growth = _peak_growth("bench", "mobilenet_v2", 1280, threads=1)
    assert growth > 256 * 2**20  # a size where the working memory dwarfs the weights
    assert memory_bytes(expand(load_spec("mobilenet_v2"), 1, (1280, 1280)), 1) >= growth


# --------------------------------------------------------------------------- fit --measure


def test_fit_measure_times_the_resolution_it_reports(monkeypatch):
    import mnsize.bench as bench

    asked = []

    def fake_time_networks(configs, threads, seconds, rounds=6, tick=None, runtime="torch"):
        asked.extend(configs)
        return [bench.summarise([1.0, 2.0, 3.0]) for _ in configs]

    monkeypatch.setattr(bench, "time_networks", fake_time_networks)
    result = run("fit", "--measure", "--max-madds", "1G", "--alphas", "0.25", "--resolutions", "448x32,160",
                 "-f", "json")
    assert result.exit_code == 0, result.output
    assert sorted(res for _, _, res in asked) == [(160, 160), (448, 32)]


def test_time_networks_builds_the_height_and_width_asked_for(monkeypatch):
    import mnsize.bench as bench

    shapes = []

    def fake_build(runtime, layers, input_shape, batch, threads):
        shapes.append((input_shape, layers[0].in_shape, layers[-1].in_shape))
        return None

    monkeypatch.setattr(bench, "_build", fake_build)
    monkeypatch.setattr(bench, "_samples", lambda *args, **kwargs: [1.0])
    monkeypatch.setattr(bench, "FORK", False)  # in this process, so that `shapes` sees the builds
    bench.time_networks([("mobilenet_v1", "0.25", (448, 32)), ("mobilenet_v1", "0.25", 96)], 1, seconds=0.01)
    assert shapes[0][:2] == ((3, 448, 32), (3, 448, 32)) and shapes[1][:2] == ((3, 96, 96), (3, 96, 96))


def test_a_value_shown_in_an_error_is_bounded_as_a_whole():
    """reprlib bounds each part of a value; a list of mappings of long strings
    (a mutated spec's key) would still make an error line of a thousand
    characters, so show() bounds the whole."""
    from mnsize.errors import MAX_SHOWN, show

    value = [{f"{k}" * 80: "v" * 80 for k in "abcd"} for _ in range(4)]
    assert len(show(value)) == MAX_SHOWN and show(value).endswith("...")
    assert show("short") == "'short'"
