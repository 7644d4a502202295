"""Loading and validating specs: every error names the file, line, layer and key."""

from __future__ import annotations

import pytest

from mnsize import MnsizeError, SpecError, builtin_names, load_spec, parse_spec
from mnsize.spec import read_spec

from .conftest import spec_text


def error_of(text: str) -> str:
    with pytest.raises(SpecError) as info:
        parse_spec(text, "bad.yaml")
    message = str(info.value)
    assert "\n" not in message
    assert message.startswith("bad.yaml")
    return message


def test_builtins_are_listed_and_load():
    assert {"mobilenet_v1", "mobilenet_v1_conv", "mobilenet_v1_shallow"} <= set(builtin_names())
    for name in builtin_names():
        spec = load_spec(name)
        assert spec.name == name
        assert spec.source


def test_spec_path_and_builtin_agree(tmp_path):
    from mnsize.models import spec_path

    text = open(spec_path("mobilenet_v1"), encoding="utf-8").read()
    path = tmp_path / "mine.yaml"
    path.write_text(text)
    assert load_spec(str(path)).layers == load_spec("mobilenet_v1").layers


@pytest.mark.parametrize("layers,expected", [
    ("  - {kind: conv, kernel: 3, out: 32, stride: -1}\n",
     "bad.yaml:7: layer 1 (conv): key 'stride': expected an integer from 1 to 1,000,000, got -1"),
    ("  - {kind: conv, kernel: 3, out: 32.5}\n",
     "bad.yaml:7: layer 1 (conv): key 'out': expected an integer from 1 to 1,000,000, got 32.5"),
    ("  - {kind: conv, kernel: 3, out: '32'}\n",
     "bad.yaml:7: layer 1 (conv): key 'out': expected an integer from 1 to 1,000,000, got '32'"),
    ("  - {kind: conv, kernel: 3, out: true}\n",
     "bad.yaml:7: layer 1 (conv): key 'out': expected an integer from 1 to 1,000,000, got True"),
    ("  - {kind: conv, kernel: 3, out: 8}\n  - {kind: sepconv, out: 8}\n",
     "bad.yaml:8: layer 2: key 'kind': unknown layer kind 'sepconv' (expected one of conv, dwsep, dw, pw, "
     "inverted_residual, avgpool, maxpool, dropout, fc)"),
    ("  - {kind: dwsep, out: 8, strides: 2}\n",
     "bad.yaml:7: layer 1 (dwsep): key 'strides': unknown key for a dwsep layer"),
    ("  - {kind: conv, out: 8}\n", "bad.yaml:7: layer 1 (conv): key 'kernel': a conv layer needs 'kernel'"),
    ("  - {out: 8}\n", "bad.yaml:7: layer 1: missing key 'kind'"),
    ("  - 42\n", "bad.yaml:7: layer 1: expected a mapping"),
    ("  - {kind: dw, act: swish}\n", "bad.yaml:7: layer 1 (dw): key 'act': expected one of relu, relu6"),
    ("  - {kind: dw, repeat: 0}\n", "bad.yaml:7: layer 1 (dw): key 'repeat': expected an integer from 1 to 1,000, got 0"),
    ("  - {kind: dw, bn: 1}\n", "bad.yaml:7: layer 1 (dw): key 'bn': expected true or false, got 1"),
    ("  - {kind: dw, name: 'a b'}\n", "bad.yaml:7: layer 1 (dw a b): key 'name': expected letters"),
    ("  - {kind: pw, out: 1000001}\n", "bad.yaml:7: layer 1 (pw): key 'out': expected an integer from 1 to 1,000,000"),
    ("  - {kind: dw, repeat: 1000000000}\n", "bad.yaml:7: layer 1 (dw): key 'repeat': expected an integer from 1 to 1,000"),
    ("  - {kind: [1, 2]}\n", "bad.yaml:7: layer 1: key 'kind': unknown layer kind [1, 2]"),
    ("  - {kind: pw, out: 8, scale: [1]}\n", "bad.yaml:7: layer 1 (pw): key 'scale': expected true, false or up, got [1]"),
    ("  - {kind: conv, kernel: 2, out: 8}\n", "bad.yaml:7: layer 1 (conv): key 'kernel': expected an odd kernel size, got 2"),
    ("  - kind: dw\n    kernel: 0\n", "bad.yaml:8: layer 1 (dw): key 'kernel': expected an integer from 1 to 99, got 0"),
])
def test_layer_errors(layers, expected):
    assert error_of(spec_text(layers)).startswith(expected)


@pytest.mark.parametrize("text,expected", [
    ("", "bad.yaml: expected a mapping with keys name, source, input, width, classes, layers; got an empty"),
    ("- 1\n- 2\n", "bad.yaml: expected a mapping with keys"),
    ("just text", "bad.yaml: expected a mapping with keys"),
    ("name: x\nlayers: [\n", "bad.yaml:3: invalid YAML"),
    ("a: 1\na: {b\n", "bad.yaml:3: invalid YAML"),
    ("!!python/object/apply:os.system ['echo hacked']\n", "bad.yaml:1: invalid YAML: could not determine a "
     "constructor for the tag 'tag:yaml.org,2002:python/object/apply:os.system'"),
    ("name: x\nsource: y\ninput: {channels: 3, resolution: 224}\nwidth: floor\nclasses: 10\nlayer: []\n",
     "bad.yaml:6: key 'layer': unknown key"),
    ("name: x\nsource: y\ninput: {channels: 3, resolution: 224}\nwidth: floor\nclasses: 10\n",
     "bad.yaml: missing required key 'layers'"),
    (spec_text("", "name: x\nsource: y\ninput: {channels: 3, resolution: 224}\nwidth: floor\nclasses: 10\n"),
     "bad.yaml:6: key 'layers': expected a non-empty list of layers"),
    (spec_text("  - dw\n", "name: x\nsource: y\ninput: {channels: 3, resolution: [224, 0]}\nwidth: floor\n"
               "classes: 10\n"), "bad.yaml:3: key 'input.resolution': expected an integer from 1 to 1,000,000, got 0"),
    (spec_text("  - dw\n", "name: x\nsource: y\ninput: {channels: 3, resolution: 224}\nwidth: {rule: round}\n"
               "classes: 10\n"), "bad.yaml:4: key 'width.rule': expected one of floor, divisible, got 'round'"),
    (spec_text("  - dw\n", "name: x\nsource: y\ninput: {channels: 3, resolution: 224}\n"
               "width: {rule: floor, divisor: 8}\nclasses: 10\n"),
     "bad.yaml:4: key 'width.divisor': unknown key for the floor rule"),
    (spec_text("  - dw\n", "name: x\nsource: y\ninput: {channels: 3, resolution: 224}\nwidth: floor\n"
               "classes: 0\n"), "bad.yaml:5: key 'classes': expected an integer from 1 to 1,000,000, got 0"),
])
def test_document_errors(text, expected):
    assert error_of(text).startswith(expected)


def test_duplicate_names_are_refused(tiny):
    from mnsize import expand

    spec = tiny("  - {kind: dw, name: a}\n  - {kind: dw, name: a}\n")
    with pytest.raises(SpecError, match=r"tiny.yaml:8: layer 2 \(dw a\): key 'name': duplicate layer name 'a'"):
        expand(spec)


def test_file_errors(tmp_path):
    with pytest.raises(MnsizeError, match="nope.yaml: no such file"):
        read_spec(tmp_path / "nope.yaml", display="nope.yaml")
    raw = tmp_path / "latin1.yaml"
    raw.write_bytes(b"name: caf\xe9\n")
    with pytest.raises(SpecError, match=r"not UTF-8 text \(byte 9\)"):
        read_spec(raw)
    with pytest.raises(MnsizeError, match="is a directory"):
        load_spec(tmp_path)


def test_unknown_model_lists_builtins():
    with pytest.raises(MnsizeError, match="unknown model 'mobilenet_v9': built-in models are efficientnet_b0, mnasnet1_0, mobilenet_v1, "):
        load_spec("mobilenet_v9")


def test_alias_bomb_is_refused_quickly():
    bomb = "a: &a [x, x, x, x, x, x, x, x, x]\n" + "".join(
        f"{c}: &{c} [*{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}]\n"
        for p, c in zip("abcdefgh", "bcdefghi"))
    assert "unknown key" in error_of(bomb)


def test_unreadable_names(tmp_path):
    with pytest.raises(MnsizeError, match="cannot read: embedded null byte"):
        load_spec("a\x00.yaml")
    result_dir = tmp_path / "d.yaml"
    result_dir.mkdir()
    with pytest.raises(MnsizeError, match="is a directory"):
        load_spec(str(result_dir))
