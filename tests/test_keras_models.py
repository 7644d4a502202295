"""Models nobody on this project wrote: twelve Keras 3 applications (torch
backend) exported to ONNX, counted by mnsize and compared with Keras's own
counts, imported as specs and verified against the files they came from.

The models are built and exported once per session (tests/keras_models.py);
each is also run through onnxruntime's basic graph optimisations with a static
batch of 1 (the `folded` file), the form a deployment tool hands on.
"""

from __future__ import annotations

import json
import math
import re
from collections import Counter

import pytest
import yaml
from click.testing import CliRunner

from mnsize import count, expand, load_spec
from mnsize.cli import cli
from mnsize.conventions import CONVENTIONS

from . import keras_models
from .keras_models import MODELS, model_id

IDS = [model_id(*model) for model in MODELS]

#: count_params() of keras.applications at α 1.0, 224x224, 1000 classes, as
#: Keras's model.summary() prints them (the figures of tests/test_conventions.py)
PUBLISHED_PARAMS = {"MobileNet-1.0": 4_253_864, "MobileNetV2-1.0": 3_538_984, "MobileNetV3Large-1.0": 5_507_432,
                    "MobileNetV3Small-1.0": 2_554_968, "EfficientNetB0-1.0": 5_330_571}
#: MobileNetV1 1.0-224: the paper's 569M (Howard et al. 2017, Table 8), the
#: classifier's 1024 x 1000 included, which Keras computes as a 1x1 Conv2D
V1_MADDS = 568_740_352

#: the built-in spec of each model: the one that follows its family
#: (keras_models.SPECS), with Keras's own width arithmetic (V1's int(c α),
#: V2's truncation before rounding to a multiple of 8, V3's 16-wide stem and
#: 1280/1024-wide layer after pooling at every α below 1), so each model is
#: compared at its own α, MobileNetV3 at 0.75 included
BUILTIN = {model_id(family, alpha): keras_models.SPECS[family] for family, alpha in MODELS}


@pytest.fixture(scope="session")
def keras_exports(tmp_path_factory) -> dict[str, keras_models.Exported]:
    return keras_models.export_all(tmp_path_factory.mktemp("keras"))


@pytest.fixture(params=IDS)
def exported(request, keras_exports) -> keras_models.Exported:
    return keras_exports[request.param]


def run(*args: str):
    return CliRunner().invoke(cli, [str(arg) for arg in args])


def totals(*args) -> dict:
    result = run("table", "--model", *args, "--format", "json")
    assert result.exit_code == 0, result.stderr
    return json.loads(result.stdout)["totals"]


def layers(spec) -> list[dict]:
    result = run("table", "--model", spec, "--format", "json")
    assert result.exit_code == 0, result.stderr
    return json.loads(result.stdout)["layers"]


def imported(exported, tmp_path):
    spec = tmp_path / f"{exported.id}.yaml"
    result = run("import", exported.onnx, "--out", spec)
    assert result.exit_code == 0, result.stderr
    return spec


# --------------------------------------------------------------------------- the Keras side, checked on its own


def test_the_keras_counts_are_the_published_ones(keras_exports):
    assert {key: keras_exports[key].count_params for key in PUBLISHED_PARAMS} == PUBLISHED_PARAMS
    assert keras_exports["MobileNet-1.0"].madds == V1_MADDS
    # EfficientNet's Normalization layer: ImageNet mean (3), variance (3) and its sample count (1)
    assert {key: e.count_params - e.params for key, e in keras_exports.items()} == \
        {key: 7 if key == "EfficientNetB0-1.0" else 0 for key in IDS}


@pytest.mark.parametrize("key", sorted(BUILTIN))
def test_the_keras_counts_are_the_builtin_specs_counts(keras_exports, key):
    exported = keras_exports[key]
    report = count(expand(load_spec(BUILTIN[key]), str(exported.alpha)), CONVENTIONS["keras"])
    assert (report.params, report.madds) == (exported.params, exported.madds)


def test_keras_madds_follows_its_formula():
    import numpy as np

    keras = keras_models._keras()
    inputs = keras.Input((20, 18, 6))
    x = keras.layers.Conv2D(12, (3, 5), strides=2, padding="same", groups=3)(inputs)  # 10 x 9 out
    x = keras.layers.DepthwiseConv2D(3, depth_multiplier=2, padding="valid")(x)  # 8 x 7 out, 24 channels
    x = keras.layers.BatchNormalization()(x)
    x = keras.layers.Dense(5)(x)  # on every one of the 8 x 7 positions
    x = keras.layers.GlobalAveragePooling2D()(x)
    inner = keras.Model(inputs, x)
    outer_in = keras.Input((20, 18, 6))
    model = keras.Model(outer_in, keras.layers.Dense(7)(inner(outer_in)))  # a nested model
    model(np.zeros((1, 20, 18, 6), dtype="float32"))
    assert keras_models.keras_madds(model) == (
        3 * 5 * (6 // 3) * 12 * 10 * 9 + 3 * 3 * 12 * 2 * 8 * 7 + 8 * 7 * 24 * 5 + 5 * 7)
    assert keras_models.keras_params(model) == model.count_params() == (
        3 * 5 * 2 * 12 + 12 + 3 * 3 * 12 * 2 + 24 + 4 * 24 + 24 * 5 + 5 + 5 * 7 + 7)


def test_export_and_folding_did_their_work(keras_exports):
    import onnx

    for exported in keras_exports.values():
        raw, fold = onnx.load(exported.onnx).graph, onnx.load(exported.folded).graph
        assert raw.input[0].type.tensor_type.shape.dim[0].dim_param == "batch"
        assert [d.dim_value for d in fold.input[0].type.tensor_type.shape.dim] == [1, 224, 224, 3]
        # the exporter's bookkeeping, gone once onnxruntime has folded the constants
        assert {"Cast", "Shape", "Gather", "Constant"} <= set(keras_models.op_types(exported.onnx))
        assert not {"Cast", "Shape", "Gather", "Constant", "Identity"} & set(keras_models.op_types(exported.folded))
        assert keras_models.op_types(exported.onnx)["Conv"] == keras_models.op_types(exported.folded)["Conv"]


def _shared_initializers(path) -> int:
    import onnx

    graph = onnx.load(str(path)).graph
    tensors = {tensor.name for tensor in graph.initializer if math.prod(tensor.dims) > 1}
    uses = Counter(name for node in graph.node for name in node.input if name in tensors)
    return sum(1 for n in uses.values() if n > 1)


def test_both_kinds_of_weights_are_exported(keras_exports):
    """As Keras initialises them, equal BatchNorm tensors become one shared
    initializer; varied ones (as trained) each have their own."""
    shared = {key: _shared_initializers(e.onnx) > 0 for key, e in keras_exports.items()}
    assert shared == {key: not e.varied for key, e in keras_exports.items()}
    assert sorted(key for key, e in keras_exports.items() if e.varied) == sorted(
        ["MobileNet-1.0", "MobileNetV2-1.0", "MobileNetV3Small-1.0", "MobileNetV3Large-1.0", "EfficientNetB0-1.0"])


# --------------------------------------------------------------------------- mnsize on them


def test_table_counts_what_keras_counts(exported):
    counted = totals(exported.onnx, "--convention", "keras")
    assert (counted["madds"], counted["params"]) == (exported.madds, exported.params)


def test_table_counts_the_folded_file_the_same(exported):
    counted = totals(exported.folded, "--convention", "keras")
    assert (counted["madds"], counted["params"]) == (exported.madds, exported.params)


def test_import_writes_a_spec_that_counts_and_verifies_the_same(exported, tmp_path):
    spec = imported(exported, tmp_path)
    assert yaml.safe_load(spec.read_text(encoding="utf-8"))["layers"]
    assert totals(spec) == totals(exported.onnx)
    for model in (exported.onnx, exported.folded):
        result = run("verify", "--model", spec, "--against", model)
        assert result.exit_code == 0, result.stdout + result.stderr


def test_verify_names_the_layer_whose_width_was_changed(exported, tmp_path):
    spec = imported(exported, tmp_path)
    data = yaml.safe_load(spec.read_text(encoding="utf-8"))
    rows = [row for row in data["layers"] if isinstance(row, dict) and "out" in row]
    rows[len(rows) // 2]["out"] += 8
    edited = tmp_path / "edited.yaml"
    edited.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    before, after = layers(spec), layers(edited)
    name = next(b["name"] for a, b in zip(before, after)
                if (a["out"], a["madds"], a["params"]) != (b["out"], b["madds"], b["params"]))
    result = run("verify", "--model", edited, "--against", exported.onnx)
    assert result.exit_code == 1, result.stdout + result.stderr
    assert re.search(rf"\b{re.escape(name)}\b", result.stderr), (name, result.stderr)


def test_import_keeps_an_existing_spec_unless_forced(exported, tmp_path):
    out = tmp_path / "spec.yaml"
    out.write_text("keep me\n", encoding="utf-8")
    refused = run("import", exported.onnx, "--out", out)
    assert refused.exit_code == 2, refused.stderr
    assert out.read_text(encoding="utf-8") == "keep me\n"
    forced = run("import", exported.onnx, "--out", out, "--force")
    assert forced.exit_code == 0, forced.stderr
    assert out.read_text(encoding="utf-8") == imported(exported, tmp_path).read_text(encoding="utf-8")
