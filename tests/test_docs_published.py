"""docs/published-tables.md: the published tables mnsize does not reproduce.
Every mnsize figure the page prints is recomputed here, every *agrees* cell is
recomputed from the published figure and mnsize's count, and the searches its
prose reports are run again. The published figures themselves are data the
page quotes; only mnsize's side is checked."""

from __future__ import annotations

import math
import re
from fractions import Fraction
from functools import cache
from pathlib import Path

import pytest

from mnsize import count, expand, load_spec, parse_spec
from mnsize.conventions import CONVENTIONS

ROOT = Path(__file__).resolve().parent.parent
RAW = (ROOT / "docs" / "published-tables.md").read_text(encoding="utf-8")
TEXT = " ".join(RAW.split())  # prose with its lines joined, so that a phrase may wrap
MILLION = 10**6
TF_SLIM_CLASSES = 1001
V1_CELLS = [(alpha, res) for alpha in ("1.0", "0.75", "0.5", "0.25") for res in (224, 192, 160, 128)]


def tables() -> list[list[dict[str, str]]]:
    """Every Markdown table of the page, as rows keyed by the header's cells; a
    header that repeats is keyed with its place ("difference 2")."""
    found, block = [], []
    for line in RAW.splitlines() + [""]:
        if line.startswith("|"):
            block.append([cell.strip() for cell in line.strip().strip("|").split("|")])
        elif block:
            header, _separator, *rows = block
            keys = [name if header[:i].count(name) == 0 else f"{name} {header[:i].count(name) + 1}"
                    for i, name in enumerate(header)]
            found.append([dict(zip(keys, row, strict=True)) for row in rows])
            block = []
    return found


def table_with(*columns: str) -> list[dict[str, str]]:
    """The one table of the page that has these columns."""
    (table,) = [t for t in tables() if all(column in t[0] for column in columns)]
    return table


def agrees(published: str, exact: int) -> bool:
    """The exact count, rounded to the nearest value at the published figure's
    precision (its decimal places, in millions), equals the published figure."""
    places = len(published.partition(".")[2])
    return round(Fraction(exact, MILLION), places) == Fraction(published)


def percent(published: str, exact: int, places: int) -> str:
    """(published - mnsize) / mnsize, in percent at `places` decimals, with its sign."""
    share = 100 * (Fraction(published) * MILLION - exact) / exact
    return f"{'-' if share < 0 else '+'}{float(abs(round(share, places))):.{places}f}%"


@cache
def v1(alpha: str | Fraction, res: int, classes: int = TF_SLIM_CLASSES, convention: str = "paper"):
    return count(expand(load_spec("mobilenet_v1"), alpha, res, classes), CONVENTIONS[convention])


def whole_millions(exact: int) -> int:
    return round(Fraction(exact, MILLION))


def yes_no(flag: bool) -> str:
    return "yes" if flag else "no"


# --------------------------------------------------------------------------- TF-slim's V1 mult-adds

V1_MACS = table_with("mnsize mult-adds", "mnsize (M)")


def test_v1_table_has_the_16_checkpoints():
    assert [tuple(row["checkpoint"].split("-")) for row in V1_MACS] == [(a, str(r)) for a, r in V1_CELLS]


@pytest.mark.parametrize("row", V1_MACS, ids=[row["checkpoint"] for row in V1_MACS])
def test_v1_macs_row(row):
    alpha, res = row["checkpoint"].split("-")
    madds = v1(alpha, int(res)).madds
    published = row["published MACs (M)"]
    assert row["mnsize mult-adds"] == f"{madds:,}"
    assert row["mnsize (M)"] == str(whole_millions(madds))
    assert row["difference"] == percent(published, madds, 2)
    assert row["agrees"] == yes_no(agrees(published, madds))


def test_v1_count_of_agreeing_cells():
    agreeing = 0
    for row in V1_MACS:
        alpha, res = row["checkpoint"].split("-")
        agreeing += agrees(row["published MACs (M)"], v1(alpha, int(res)).madds)
    assert sum(row["agrees"] == "yes" for row in V1_MACS) == agreeing
    assert f"{agreeing} of the {len(V1_CELLS)} cells agree." in TEXT


# --------------------------------------------------------------------------- the α 0.75 row

STEMLESS = table_with("mnsize mult-adds without the first conv")
ROW_075 = {int(row["checkpoint"].split("-")[1]): row["published MACs (M)"] for row in STEMLESS}


def stem(report) -> int:
    first = report.rows[0]
    assert first.layer.kind == "conv" and first.layer.kernel == 3
    return first.madds


@pytest.mark.parametrize("row", STEMLESS, ids=[row["checkpoint"] for row in STEMLESS])
def test_075_row_without_the_stem(row):
    alpha, res = row["checkpoint"].split("-")
    report = v1(alpha, int(res))
    madds = report.madds - stem(report)
    assert alpha == "0.75"
    assert row["mnsize mult-adds without the first conv"] == f"{madds:,}"
    assert row["mnsize (M)"] == f"{float(round(Fraction(madds, MILLION), 2)):.2f}"
    assert row["agrees"] == yes_no(agrees(row["published MACs (M)"], madds))


def test_075_row_is_the_whole_row_and_the_stem_cost():
    assert sorted(ROW_075) == [128, 160, 192, 224]
    assert all(row["published MACs (M)"] == ROW_075[int(row["checkpoint"].split("-")[1])]
               for row in V1_MACS if row["checkpoint"].startswith("0.75-"))
    cost = stem(v1("0.75", 224))
    assert cost == 3 * 3 * 3 * 24 * 112 * 112
    assert f"(3·3·3·24 mult-adds per output position at α 0.75, {cost:,} at 224)" in TEXT
    full = v1("1.0", 224)
    assert f"(1.0-224 without it would be {whole_millions(full.madds - stem(full))}M)" in TEXT


def test_075_row_width_search():
    """No α from 0.650 to 0.850 (step 0.001) gives the whole row; the page names
    the only ones that give any cell."""
    hits = {res: [] for res in ROW_075}
    for thousandths in range(650, 851):
        alpha = Fraction(thousandths, 1000)
        for res, published in ROW_075.items():
            if agrees(published, v1(alpha, res).madds):
                hits[res].append(alpha)
    assert not set.intersection(*(set(alphas) for alphas in hits.values()))
    (res,) = [res for res, alphas in hits.items() if alphas]
    alphas = hits[res]
    assert alphas == [alphas[0] + Fraction(i, 1000) for i in range(len(alphas))]  # one unbroken run
    assert (f"only α {float(alphas[0]):.3f} to {float(alphas[-1]):.3f} give one of its cells "
            f"({ROW_075[res]} at {res})") in TEXT


def test_075_row_resolution_search():
    """At α 0.75, resolutions within 32 pixels of each cell's."""
    hits = {res: [r for r in range(res - 32, res + 33) if agrees(published, v1("0.75", r).madds)]
            for res, published in ROW_075.items()}
    (res,) = [res for res, found in hits.items() if found]
    found, missed = hits[res], [ROW_075[r] for r in sorted(ROW_075, reverse=True) if r != res]
    assert found == list(range(found[0], found[-1] + 1))
    assert (f"give {ROW_075[res]} at {found[0]} to {found[-1]} and never "
            f"{', '.join(missed[:-1])} or {missed[-1]}") in TEXT


# --------------------------------------------------------------------------- 0.25-192 and 0.5-224


def last_map(res: int) -> tuple[int, int]:
    """The spatial size of the map the global pool reads, at α 0.25."""
    (pool,) = [layer for layer in expand(load_spec("mobilenet_v1"), "0.25", res) if layer.kind == "avgpool"]
    return pool.in_shape[1:]


def test_025_192():
    published = next(row["published MACs (M)"] for row in V1_MACS if row["checkpoint"] == "0.25-192")
    at_192, at_193 = v1("0.25", 192), v1("0.25", 193)
    assert f"is printed {published} where mnsize counts {at_192.madds / MILLION:.1f}M " \
           f"({percent(published, at_192.madds, 1)})" in TEXT
    assert not [r for r in range(160, 225) if agrees(published, v1("0.25", r).madds)]
    assert f"192 gives {at_192.madds / MILLION:.1f}M and 193 already {at_193.madds / MILLION:.1f}M" in TEXT
    assert [last_map(r) for r in (192, 193)] == [(6, 6), (7, 7)]
    assert min(r for r in range(160, 225) if last_map(r) == (7, 7)) == 193
    widths = [Fraction(k, 1000) for k in range(150, 351) if agrees(published, v1(Fraction(k, 1000), 192).madds)]
    assert widths == [widths[0] + Fraction(i, 1000) for i in range(len(widths))]
    assert (f"Of the widths α 0.150 to 0.350 (step 0.001), only {float(widths[0]):.3f} to {float(widths[-1]):.3f} "
            f"give {published} at 192") in TEXT


def round_half_up(value: Fraction, places: int) -> Fraction:
    scale = 10**places
    return Fraction(math.floor(value * scale + Fraction(1, 2)), scale)


def test_05_224_is_double_rounding():
    madds = v1("0.5", 224).madds
    assert f"**0.5-224** is {madds:,} mult-adds, {float(Fraction(madds, MILLION))}M" in TEXT
    assert round_half_up(round_half_up(Fraction(madds, MILLION), 1), 0) == 150 != whole_millions(madds)
    twice = {(a, r): round_half_up(round_half_up(Fraction(v1(a, r).madds, MILLION), 1), 0) for a, r in V1_CELLS}
    changed = [f"{a}-{r}" for (a, r), figure in twice.items() if figure != whole_millions(v1(a, r).madds)]
    assert changed == ["0.5-224"]
    assert "Rounding twice changes no other cell of the table" in TEXT


# --------------------------------------------------------------------------- TF-slim's V1 parameters

PARAMS = table_with("BatchNorm counted")


@pytest.mark.parametrize("row", PARAMS, ids=[f"{r['α']}-{r['BatchNorm counted']}" for r in PARAMS])
def test_v1_params_row(row):
    convention = re.search(r"`(\w+)`", row["BatchNorm counted"]).group(1)
    per_channel = {"paper": "none", "torch": "2 per channel", "keras": "4 per channel"}[convention]
    assert row["BatchNorm counted"].startswith(per_channel)
    counted = {classes: v1(row["α"], 224, classes, convention).params for classes in (1000, 1001)}
    assert row["mnsize, 1000 classes"] == f"{counted[1000]:,}"
    assert row["mnsize, 1001 classes"] == f"{counted[1001]:,}"
    verdicts = {agrees(row["published (M)"], params) for params in counted.values()}
    assert len(verdicts) == 1  # "agrees holds for both class counts or neither"
    assert row["agrees"] == yes_no(verdicts.pop())


def test_v1_params_no_single_convention():
    assert {row["α"] for row in PARAMS} == {"1.0", "0.75", "0.5", "0.25"}
    matches = {c: sum(agrees(row["published (M)"], v1(row["α"], 224, 1001, c).params)
                      for row in PARAMS if f"`{c}`" in row["BatchNorm counted"])
               for c in ("paper", "torch", "keras")}
    assert 4 not in matches.values()
    words = {0: "none", 1: "one", 2: "two of four", 3: "three of four"}
    assert (f"the paper's matches {words[matches['paper']]}, PyTorch's {words[matches['torch']]}, "
            f"Keras's {words[matches['keras']]}") in TEXT


def test_v1_params_three_per_channel():
    published = {row["α"]: row["published (M)"] for row in PARAMS}

    def fits(per_channel: int) -> bool:
        for alpha, figure in published.items():
            for classes in (1000, 1001):
                report = v1(alpha, 224, classes)
                if not agrees(figure, report.params + per_channel * report.bn_params // 2):
                    return False
        return True

    (only,) = [k for k in range(9) if fits(k)]
    assert (f"Counting {only} numbers per BatchNorm channel would match all four, at 1000 or 1001 classes, "
            f"and is the only whole number that does") in TEXT


# --------------------------------------------------------------------------- TF-slim's V3 table

V3 = table_with("definition")
WIDER_HEAD = ("{kind: fc, out: 1024, scale: up, act: hardswish}", "{kind: fc, out: 1280, scale: up, act: hardswish}")


def v3_specs(cell: str) -> list:
    """The specs a definition cell names; "last layer 1280 wide" is the Keras
    spec with its 1024-wide layer after pooling made 1280 wide."""
    names = re.findall(r"`(\w+)`", cell)
    if "last layer 1280 wide" not in cell:
        return [load_spec(name) for name in names]
    (name,) = names
    text = (ROOT / "configs" / f"{name}.yaml").read_text(encoding="utf-8")
    assert text.count(WIDER_HEAD[0]) == 1
    return [parse_spec(text.replace(*WIDER_HEAD), f"{name}.yaml")]


@pytest.mark.parametrize("row", V3, ids=[f"{r['checkpoint']}: {r['definition']}" for r in V3])
def test_v3_row(row):
    family, alpha = row["checkpoint"].split()
    assert all(f"mobilenet_v3_{family.lower()}" in name for name in re.findall(r"`(\w+)`", row["definition"]))
    macs, params = row["published MACs (M)"], row["published params (M)"]
    for spec in v3_specs(row["definition"]):
        report = count(expand(spec, alpha, 224, TF_SLIM_CLASSES))
        assert row["mnsize mult-adds"] == f"{report.madds:,}"
        assert row["mnsize params"] == f"{report.params:,}"
        assert row["difference"] == percent(macs, report.madds, 2)
        assert row["difference 2"] == percent(params, report.params, 2)
        verdict = {(True, True): "both", (True, False): "MACs", (False, True): "params", (False, False): "neither"}
        assert row["agrees"] == verdict[agrees(macs, report.madds), agrees(params, report.params)]


def test_v3_table_compares_both_definitions():
    for checkpoint in ("Large 1.0", "Large 0.75", "Small 1.0", "Small 0.75"):
        family = checkpoint.split()[0].lower()
        named = {name for row in V3 if row["checkpoint"] == checkpoint
                 for name in re.findall(r"`(\w+)`", row["definition"])}
        assert named == {f"mobilenet_v3_{family}", f"mobilenet_v3_{family}_keras"}


def v3(name: str, alpha: str):
    return count(expand(load_spec(name), alpha, 224, TF_SLIM_CLASSES))


def test_v3_prose():
    large = v3("mobilenet_v3_large", "1.0").params
    assert (f"the params are {large / MILLION:.2f}M, which rounds to "
            f"{float(round(Fraction(large, MILLION), 1))}, not the 5.4 printed here") in TEXT
    torchvision = v3("mobilenet_v3_large", "0.75")
    assert f"counts {torchvision.madds / MILLION:.1f}M and {torchvision.params / MILLION:.2f}M" in TEXT
    small = [row for row in V3 if row["checkpoint"] == "Small 1.0"]
    published = {row["published MACs (M)"] for row in small}.pop()
    over = [100 * (Fraction(published) * MILLION - madds) / madds
            for row in small for madds in (count(expand(spec, "1.0", 224, TF_SLIM_CLASSES)).madds
                                           for spec in v3_specs(row["definition"]))]
    assert f"it is {round(min(over))}% to {round(max(over))}% over either definition" in TEXT
