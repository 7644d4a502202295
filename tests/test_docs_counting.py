"""Every count the documentation states is the engine's: the papers' figures in
docs/counting.md, the other counters' totals, the memory rules' example, and
the counts the benchmark and robustness pages quote. Each figure is recomputed
here and looked for in the page, in the words the page uses."""

from __future__ import annotations

import re
from fractions import Fraction
from pathlib import Path

import pytest

from mnsize import builtin_names, count, expand, load_spec
from mnsize.conventions import CONVENTIONS

ROOT = Path(__file__).resolve().parent.parent


def page(name: str) -> str:
    """A page of docs/ with its lines joined, so that a phrase may wrap."""
    return " ".join((ROOT / "docs" / name).read_text(encoding="utf-8").split())


COUNTING = (ROOT / "docs" / "counting.md").read_text(encoding="utf-8")


def report(model="mobilenet_v1", alpha="1.0", resolution=None, convention=None):
    return count(expand(load_spec(model), alpha, resolution), convention)


# --------------------------------------------------------------------------- the papers' figures

COUNT_ROWS = re.findall(r"^\| [^|]*MobileNet[^|]*\| [\d,]+ \| [\d,]+ \|.*$", COUNTING, re.MULTILINE)


def test_count_table_is_found():
    assert len(COUNT_ROWS) == 11


@pytest.mark.parametrize("row", COUNT_ROWS)
def test_count_table(row):
    cells = [c.strip() for c in row.strip("|").split("|")]
    args = re.search(r"`(--[^`]*)`", cells[0])
    argv = args.group(1).split() if args else []
    opts = dict(zip(argv[::2], argv[1::2]))
    counted = report(opts.get("--model", "mobilenet_v1"), opts.get("--alpha", "1.0"), int(opts.get("--res", 224)))
    assert cells[1] == f"{counted.madds:,}"
    assert cells[2] == f"{counted.params:,}"


def test_pytorch_parameter_count():
    v1 = report()
    assert f"({v1.params + v1.bn_params:,} for 1.0-MobileNet-224)" in page("counting.md")


def test_torchvision_parameter_counts_with_batchnorm():
    v2, large, small = (report(m) for m in ("mobilenet_v2", "mobilenet_v3_large", "mobilenet_v3_small"))
    figures = [f"{r.params + r.bn_params:,}" for r in (v2, large, small)]
    assert f"torchvision's exactly ({figures[0]}, {figures[1]} and {figures[2]})" in page("counting.md")


def test_table_2_shares():
    """The exact conv 3x3 share of mult-adds, and the paper's parameter shares
    (FC weights without the bias)."""
    v1 = report()
    by_kind = {}
    for row in v1.rows:
        madds, params = by_kind.get(row.layer.kind, (0, 0))
        bias = row.layer.out_shape[0] if row.layer.kind == "fc" else 0
        by_kind[row.layer.kind] = (madds + row.madds, params + row.params - bias)
    weights = sum(params for _, params in by_kind.values())
    shares = " / ".join(f"{100 * by_kind[kind][1] / weights:.2f}" for kind in ("pw", "dw", "conv", "fc"))
    text = page("counting.md")
    assert f"{shares}%" in text
    assert f"the exact count gives {100 * by_kind['conv'][0] / v1.madds:.2f}%" in text


def test_standard_convolutions():
    v1, conv = report(), report("mobilenet_v1_conv")
    assert (f"would cost {conv.madds:,} mult-adds, {conv.madds / v1.madds:.2f}× more"
            in page("counting.md"))


def test_size_example():
    """size = params + one bias per BatchNorm-folded bias-free conv, x dtype bytes."""
    layers = expand(load_spec("mobilenet_v1"), "1.0")
    params = count(layers).params
    folded = sum(layer.out_shape[0] for layer in layers if layer.bn and not layer.bias)
    stored = params + folded
    assert (f"{params:,} + {folded:,} = {stored:,} numbers, {4 * stored / 1e6:.1f} MB in fp32, "
            f"{stored / 1e6:.1f} MB in int8") in page("counting.md")


# --------------------------------------------------------------------------- other counters


def test_other_counters_totals():
    madds = {name: report(convention=c).madds for name, c in CONVENTIONS.items()}
    flops = madds["torch"] * CONVENTIONS["torch"].flops_per_madd
    assert (f"ptflops says {madds['ptflops'] / 1e6:.1f}M, thop {madds['thop'] / 1e6:.1f}M, "
            f"fvcore {madds['fvcore'] / 1e6:.1f}M, torchinfo {madds['torchinfo'] / 1e6:.1f}M and PyTorch's own "
            f"FlopCounterMode {flops / 1e6:,.1f}M FLOPs") in page("counting.md")


def test_keras_parameter_counts():
    keras = CONVENTIONS["keras"]
    figures = [f"{report(m, convention=keras).params:,}"
               for m in ("mobilenet_v1", "mobilenet_v2", "mobilenet_v3_large", "mobilenet_v3_small")]
    assert (f"(MobileNet {figures[0]}; V2 {figures[1]}; V3-Large {figures[2]}; V3-Small {figures[3]} params)"
            in page("counting.md"))


# --------------------------------------------------------------------------- benchmarks and robustness


def test_benchmark_candidate_counts():
    from mnsize.units import parse_alphas, parse_resolutions

    script = (ROOT / "benchmarks" / "fit_speed.py").read_text(encoding="utf-8")
    assert '"--alphas", "0.05:1.40:0.01", "--resolutions", "32:512:8"' in script
    candidates = len(parse_alphas("0.05:1.40:0.01")) * len(parse_resolutions("32:512:8"))
    text = page("benchmarks.md")
    assert f"search over {candidates:,} candidates (α 0.05 to 1.40 step 0.01 × resolution 32 to 512 step 8)" in text
    assert f"two families ({2 * candidates:,} candidates)" in text
    configurations = len(builtin_names()) * 4 * 4
    row = f"| mnsize verify --all ({len(builtin_names())} specs, {configurations} configs) | "
    assert row in text
    median_ms = float(text.split(row)[1].split(" |")[0])
    assert f"`verify --all` takes {median_ms / 1000:.1f} s for its {configurations} configurations" in text


def test_verify_all_grid():
    assert f"({len(builtin_names())} specs, {len(builtin_names()) * 16} configurations)" in page("cli.md")


def test_huge_model_count():
    huge = report(alpha="100", resolution=1_000_000)
    assert f"at {huge.madds:,} mult-adds" in page("robustness.md")


def test_fuzzing_counts():
    fuzz = (ROOT / "tests" / "test_fuzz.py").read_text(encoding="utf-8")
    examples = int(re.search(r"^EXAMPLES = (\d+)", fuzz, re.MULTILINE).group(1))
    generated = fuzz.count("\n@settings_\n")
    adversarial = re.search(r"^ADVERSARIAL = \{\n(.*?)^\}", fuzz, re.MULTILINE | re.DOTALL).group(1)
    cases = len(re.findall(r'^    "[^"]+":', adversarial, re.MULTILINE))
    text = page("robustness.md")
    assert f"runs {generated * examples:,} generated inputs on every run" in text
    assert f"and {cases} adversarial files through both loaders" in text


def test_width_example():
    """0.29 of 100 channels is 29 in exact arithmetic, 28 in floating point."""
    assert int(100 * 0.29) == 28 and int(100 * Fraction("0.29")) == 29
    assert "`--alpha 0.29` is 29/100, so 100 channels become 29 (floating point would give 28)" in page("counting.md")
