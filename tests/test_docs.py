"""The documentation's examples are real (they load and count as described),
and every relative link in the README, CONTRIBUTING.md and docs/ leads somewhere."""

from __future__ import annotations

import re
from pathlib import Path

from mnsize import count, expand, parse_spec

ROOT = Path(__file__).resolve().parent.parent


def yaml_blocks(path: Path) -> list[str]:
    return re.findall(r"```yaml\n(.*?)```", path.read_text(encoding="utf-8"), re.DOTALL)


def test_spec_format_worked_example():
    example = next(b for b in yaml_blocks(ROOT / "docs" / "spec-format.md") if "name: tiny_family" in b)
    layers = expand(parse_spec(example, "spec-format.md"), "0.5")
    by_name = {layer.name: layer for layer in layers}
    shapes = {name: (layer.in_shape, layer.out_shape) for name, layer in by_name.items()}
    assert shapes["stem"] == ((1, 96, 96), (16, 48, 48))
    assert shapes["dwsep1.pw"] == ((16, 24, 24), (16, 24, 24))
    for block in ("ir1", "ir2"):
        assert shapes[f"{block}.expand"][1] == (64, 24, 24)
        assert shapes[f"{block}.project"][1] == (16, 24, 24) and by_name[f"{block}.project"].residual
    assert shapes["ir3.expand"][1] == (96, 24, 24)
    assert shapes["ir3.dw"][1] == (96, 12, 12) and by_name["ir3.dw"].kernel == 5
    assert by_name["ir3.se"].squeeze == 24 and by_name["ir3.dw"].act == "hardswish"
    assert shapes["ir3.project"][1] == (32, 12, 12) and not by_name["ir3.project"].residual
    assert shapes["pw1"][1] == (128, 12, 12)
    assert shapes["fc1"] == ((128, 1, 1), (64, 1, 1)) and shapes["fc2"][1] == (10, 1, 1)
    assert [layer.kind for layer in layers][-4:] == ["avgpool", "fc", "dropout", "fc"]
    report = count(layers)
    assert report.rows[0].madds == 9 * 1 * 16 * 48 * 48


def test_spec_format_opening_example_is_the_builtin_v1():
    opening = yaml_blocks(ROOT / "docs" / "spec-format.md")[0]
    assert "name: mobilenet_v1" in opening
    assert "{kind: dwsep,             out: 512,  stride: 1, repeat: 5}" in opening
    assert "{kind: dwsep,             out: 512,  stride: 1, repeat: 5}" in (ROOT / "configs" / "mobilenet_v1.yaml").read_text()


def test_spec_format_worked_example_verifies_against_torch():
    import pytest

    pytest.importorskip("torch", reason="verify needs torch")
    from mnsize.crosscheck import verify

    example = next(b for b in yaml_blocks(ROOT / "docs" / "spec-format.md") if "name: tiny_family" in b)
    result = verify(parse_spec(example, "spec-format.md"), "0.5", (96, 80))
    assert result.match, [c.row.layer.name for c in result.mismatches]


# --------------------------------------------------------------------------- links

PAGES = [ROOT / "README.md", ROOT / "CONTRIBUTING.md", *sorted((ROOT / "docs").glob("*.md"))]


def prose(text: str) -> str:
    """The text without fenced blocks and inline code, where a link is not a link."""
    text = re.sub(r"^ *```.*?^ *```", "", text, flags=re.DOTALL | re.MULTILINE)
    return re.sub(r"`[^`]*`", "", text)


def anchors(path: Path) -> set[str]:
    """The anchors GitHub gives a page's headings."""
    found = set()
    for heading in re.findall(r"^#+ (.*)$", re.sub(r"^ *```.*?^ *```", "", path.read_text(encoding="utf-8"),
                                                     flags=re.DOTALL | re.MULTILINE), re.MULTILINE):
        slug = re.sub(r"[^\w\- ]", "", heading.replace("`", "").strip().lower()).replace(" ", "-")
        found.add(slug)
    return found


def links() -> list:
    found = []
    for page in PAGES:
        for target in re.findall(r"\]\(([^)\s]+)\)", prose(page.read_text(encoding="utf-8"))):
            if not re.match(r"[a-z]+:", target):
                found.append((page, target))
    return found


def test_the_pages_link_to_each_other():
    targets = {(page.name, target) for page, target in links()}
    assert ("README.md", "docs/counting.md") in targets and ("README.md", "CONTRIBUTING.md") in targets


def test_every_relative_link_points_at_a_file_that_exists():
    broken = []
    for page, target in links():
        path, _, anchor = target.partition("#")
        file = (page.parent / path).resolve() if path else page
        if not file.exists():
            broken.append(f"{page.relative_to(ROOT)}: {target} (no such file)")
        elif anchor and file.suffix == ".md" and anchor not in anchors(file):
            broken.append(f"{page.relative_to(ROOT)}: {target} (no such heading)")
    assert not broken, "\n".join(broken)
