"""Models nobody on this project wrote: Keras 3 applications (torch backend),
exported to ONNX, and counted a second way from the Keras layers themselves.

Keras is imported on first use only, with KERAS_BACKEND=torch set for that
import and the variable restored after it, so neither the rest of the suite nor
the processes it starts see a changed environment.
"""

from __future__ import annotations

import collections
import contextlib
import dataclasses
import io
import json
import os
import subprocess
import sys
import warnings
from dataclasses import dataclass
from math import prod
from pathlib import Path

#: (family, α) of every model exported: keras.applications' own α values
MODELS = (
    ("MobileNet", 0.25), ("MobileNet", 0.5), ("MobileNet", 0.75), ("MobileNet", 1.0),
    ("MobileNetV2", 0.35), ("MobileNetV2", 1.0), ("MobileNetV2", 1.4),
    ("MobileNetV3Small", 0.75), ("MobileNetV3Small", 1.0),
    ("MobileNetV3Large", 0.75), ("MobileNetV3Large", 1.0),
    ("EfficientNetB0", 1.0),
)
RESOLUTION = 224


def model_id(family: str, alpha: float) -> str:
    return f"{family}-{alpha}"


def _keras():
    """keras, with the torch backend (refused if keras was already imported with another)."""
    before = os.environ.get("KERAS_BACKEND")
    os.environ["KERAS_BACKEND"] = "torch"
    try:
        import keras
    finally:
        if before is None:
            del os.environ["KERAS_BACKEND"]
        else:
            os.environ["KERAS_BACKEND"] = before
    if keras.backend.backend() != "torch":
        raise RuntimeError(f"keras was imported with the {keras.backend.backend()} backend before this module")
    return keras


def build(family: str, alpha: float, varied: bool = False):
    """A keras.applications model with random weights at 224x224, called once on zeros.

    With weights=None Keras takes any α for every family here (the fixed sets
    {0.25, 0.5, 0.75, 1.0} for MobileNet, {0.35, 0.5, 0.75, 1.0, 1.3, 1.4} for V2
    and {0.75, 1.0} for V3 are for its ImageNet checkpoints); EfficientNetB0 has
    no α and takes only 1.0.

    As Keras initialises them, every BatchNorm holds the same γ, β and moving
    statistics and every bias is zero, so the exporter's constant folding shares
    one initializer among all layers of a width. ``varied`` gives each of those
    tensors its own random values, as a trained checkpoint has: no initializer
    is shared.
    """
    import numpy as np

    keras = _keras()
    constructor = getattr(keras.applications, family)
    kwargs = {"weights": None, "input_shape": (RESOLUTION, RESOLUTION, 3)}
    if family.startswith("EfficientNet"):
        if alpha != 1.0:
            raise ValueError(f"{family} has no width multiplier: alpha must be 1.0, not {alpha}")
    else:
        kwargs["alpha"] = alpha
    model = constructor(**kwargs)
    if varied:
        rng = np.random.default_rng(0)
        for layer in _layers(model):
            if isinstance(layer, (keras.layers.Conv2D, keras.layers.DepthwiseConv2D, keras.layers.Dense,
                                  keras.layers.BatchNormalization)):
                # positive values: a moving variance must stay above zero
                layer.set_weights([w if np.ptp(w) else rng.uniform(0.5, 1.5, w.shape).astype(w.dtype)
                                   for w in layer.get_weights()])
    model(np.zeros((1, RESOLUTION, RESOLUTION, 3), dtype="float32"))
    return model


def export(model, path: Path) -> Path:
    """model.export(path, format="onnx"), quietly: Keras's torch backend keeps
    the batch symbolic ("batch"), so torch's TorchScript exporter writes it."""
    with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
        warnings.simplefilter("ignore")
        model.export(str(path), format="onnx", verbose=False)
    return Path(path)


def _layers(model):
    for layer in model.layers:
        if hasattr(layer, "layers") and layer.layers:  # a nested model: its own layers carry the work
            yield from _layers(layer)
        else:
            yield layer


def keras_madds(model) -> int:
    """Mult-adds of one image, from the Keras layers' own configuration and shapes.

    The paper's convention (Howard et al. 2017, section 3.1): only multiplications
    in convolutions and fully connected layers count, one per weight use; bias,
    BatchNorm, activations, pooling, padding, rescaling and element-wise
    products (squeeze-and-excite's gate) add none.

    - Conv2D: k_h · k_w · C_in / groups · C_out · H_out · W_out
    - DepthwiseConv2D: k_h · k_w · C_in · depth_multiplier · H_out · W_out
    - Dense: in · out, once per position when applied to a tensor of more than
      two dimensions (H · W · in · out on a 4-D tensor)
    """
    keras = _keras()
    total = 0
    for layer in _layers(model):
        # DepthwiseConv2D first: it must never be counted as a grouped Conv2D
        if isinstance(layer, keras.layers.DepthwiseConv2D):
            k_h, k_w = layer.kernel_size
            _, h_out, w_out, _ = layer.output.shape
            total += k_h * k_w * layer.input.shape[-1] * layer.depth_multiplier * h_out * w_out
        elif isinstance(layer, keras.layers.Conv2D):
            k_h, k_w = layer.kernel_size
            _, h_out, w_out, c_out = layer.output.shape
            total += k_h * k_w * layer.input.shape[-1] // layer.groups * c_out * h_out * w_out
        elif isinstance(layer, keras.layers.Dense):
            positions = prod(layer.input.shape[1:-1])
            total += positions * layer.input.shape[-1] * layer.units
    return total


def keras_params(model) -> int:
    """model.count_params() less the input preprocessing's weights.

    Keras's convention counts every weight, BatchNorm's four per channel (γ, β,
    moving mean and variance) included. EfficientNet's Normalization layer holds
    the ImageNet mean and variance it subtracts and divides by, and the number
    of samples they came from (3 + 3 + 1 = 7): input preprocessing, which an
    exported graph holds as constants of no layer, and the sample count not at all.
    """
    keras = _keras()
    return model.count_params() - sum(layer.count_params() for layer in _layers(model)
                                      if isinstance(layer, keras.layers.Normalization))


def _batch_of_one(model) -> None:
    """Every "batch" dimension of the graph's inputs, outputs and value_info made 1."""
    for value in [*model.graph.input, *model.graph.output, *model.graph.value_info]:
        for dim in value.type.tensor_type.shape.dim:
            if dim.dim_param == "batch":
                dim.ClearField("dim_param")
                dim.dim_value = 1


def folded(path: Path, out: Path) -> Path:
    """The model at ``path`` with a static batch of 1, after onnxruntime's basic
    graph optimisations (constant folding, redundant nodes removed, the fusions
    whose patterns fit), written to ``out``: what a deployment tool hands on."""
    import onnx
    import onnxruntime

    model = onnx.load(str(path))
    _batch_of_one(model)
    static = Path(out).with_name(Path(out).name + ".static.onnx")
    onnx.save(model, str(static))
    options = onnxruntime.SessionOptions()
    options.graph_optimization_level = onnxruntime.GraphOptimizationLevel.ORT_ENABLE_BASIC
    options.optimized_model_filepath = str(out)
    options.log_severity_level = 3  # errors only: shape-merge notes are not ours to print
    onnxruntime.InferenceSession(str(static), options, providers=["CPUExecutionProvider"])
    static.unlink()
    return Path(out)


def op_types(path: Path) -> collections.Counter:
    """How many nodes of each op type the ONNX file's main graph has."""
    import onnx

    return collections.Counter(node.op_type for node in onnx.load(str(path)).graph.node)


@dataclass(frozen=True)
class Exported:
    """One model as exported, with Keras's own counts of it."""

    family: str
    alpha: float
    varied: bool  # build(varied=...): no initializer shared
    onnx: str
    folded: str
    count_params: int  # model.count_params()
    params: int  # keras_params(model)
    madds: int  # keras_madds(model)

    @property
    def id(self) -> str:
        return model_id(self.family, self.alpha)


def export_one(folder: Path, family: str, alpha: float) -> Exported:
    """Build, export and fold one model into ``folder``: the α 1.0 models with
    varied weights (as trained), the others as Keras initialises them."""
    varied = alpha == 1.0
    model = build(family, alpha, varied)
    stem = model_id(family, alpha)  # "MobileNet-0.25": no with_suffix, which would take ".25" for one
    raw = export(model, Path(folder) / f"{stem}.onnx")
    fold = folded(raw, Path(folder) / f"{stem}.folded.onnx")
    return Exported(family, alpha, varied, str(raw), str(fold), model.count_params(), keras_params(model),
                    keras_madds(model))


def export_all(folder: Path, models=MODELS, workers: int | None = None) -> dict[str, Exported]:
    """Every model built, exported and folded into ``folder``, keyed by model_id.

    Tracing a Keras model for export is Python-bound, so the models are shared
    among up to two processes of their own (this file run as a script), one
    thread each; each prints one JSON line per model.
    """
    workers = workers or min(2, os.cpu_count() or 1)
    shares = [models[i::workers] for i in range(workers)]
    processes = [subprocess.Popen([sys.executable, __file__, str(folder), *(f"{f}:{a}" for f, a in share)],
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
                 for share in shares if share]
    found = {}
    for process in processes:
        try:
            out, err = process.communicate(timeout=600)
        except subprocess.TimeoutExpired:
            process.kill()
            raise
        if process.returncode:
            raise RuntimeError(f"exporting Keras models failed (exit {process.returncode}):\n{err[-4000:]}")
        for line in out.splitlines():
            exported = Exported(**json.loads(line))
            found[exported.id] = exported
    return {model_id(*model): found[model_id(*model)] for model in models}


def main(argv: list[str]) -> None:
    import torch

    torch.set_num_threads(1)  # one core per process: the processes share the machine
    folder, *models = argv
    for item in models:
        family, alpha = item.split(":")
        print(json.dumps(dataclasses.asdict(export_one(Path(folder), family, float(alpha)))), flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
