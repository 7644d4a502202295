"""The documentation's examples are real: they load and count as described."""

from __future__ import annotations

import re
from pathlib import Path

from mnsize import count, expand, parse_spec

ROOT = Path(__file__).resolve().parent.parent


def yaml_blocks(path: Path) -> list[str]:
    return re.findall(r"```yaml\n(.*?)```", path.read_text(encoding="utf-8"), re.DOTALL)


def test_spec_format_worked_example():
    example = next(b for b in yaml_blocks(ROOT / "docs" / "spec-format.md") if "name: tiny_sep" in b)
    layers = expand(parse_spec(example, "spec-format.md"), "0.5")
    shapes = {layer.name: (layer.in_shape, layer.out_shape) for layer in layers}
    assert shapes["stem"] == ((1, 96, 96), (16, 48, 48))
    assert shapes["dwsep1.pw"] == ((16, 24, 24), (16, 24, 24))
    assert shapes["dwsep2.pw"][1] == (32, 12, 12)
    assert shapes["dwsep3.dw"] == ((32, 12, 12), (32, 12, 12))
    assert shapes["dwsep4.dw"][1] == (32, 6, 6)
    assert shapes["dwsep4.pw"][1] == (64, 6, 6)
    assert shapes["fc1"] == ((64, 1, 1), (10, 1, 1))
    assert next(layer for layer in layers if layer.name == "dwsep4.dw").kernel == 5
    assert {layer.act for layer in layers if layer.kind in ("conv", "dw", "pw")} == {"relu6"}
    report = count(layers)
    assert report.rows[0].madds == 9 * 1 * 16 * 48 * 48


def test_spec_format_opening_example_is_the_builtin_v1():
    opening = yaml_blocks(ROOT / "docs" / "spec-format.md")[0]
    assert "name: mobilenet_v1" in opening
    assert "{kind: dwsep,             out: 512,  stride: 1, repeat: 5}" in opening
    assert "{kind: dwsep,             out: 512,  stride: 1, repeat: 5}" in (ROOT / "configs" / "mobilenet_v1.yaml").read_text()
