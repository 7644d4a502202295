"""Models nobody on this project wrote: Keras 3 applications (torch backend),
built at any width and input size, counted a second way from the Keras layers
themselves, and exported to ONNX.

Keras is imported on first use only, with KERAS_BACKEND=torch set for that
import and the variable restored after it, so neither the rest of the suite nor
the processes it starts see a changed environment.
"""

from __future__ import annotations

import collections
import concurrent.futures
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
#: the built-in spec that follows each family as Keras builds it
SPECS = {"MobileNet": "mobilenet_v1_keras", "MobileNetV2": "mobilenet_v2_keras",
         "MobileNetV3Large": "mobilenet_v3_large_keras", "MobileNetV3Small": "mobilenet_v3_small_keras",
         "EfficientNetB0": "efficientnet_b0"}


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


def construct(family: str, alpha: float | str, resolution: tuple[int, int] = (RESOLUTION, RESOLUTION)):
    """keras.applications' ``family`` at ``alpha`` on an H x W input: random
    weights, 1000 classes, the top included, every other argument Keras's own
    default (MobileNetV3's include_preprocessing, a Rescaling with no weights).

    With weights=None Keras takes any α for every family here (the fixed sets
    {0.25, 0.5, 0.75, 1.0} for MobileNet, {0.35, 0.5, 0.75, 1.0, 1.3, 1.4} for V2
    and {0.75, 1.0} for V3 are for its ImageNet checkpoints) and any side of 32
    or more; EfficientNetB0 has no α and takes only 1.0. ``alpha`` as text
    ("0.37") reaches Keras as the double float() makes of it.
    """
    keras = _keras()
    constructor = getattr(keras.applications, family)
    kwargs = {"weights": None, "include_top": True, "classes": 1000, "input_shape": (*resolution, 3)}
    if family.startswith("EfficientNet"):
        if float(alpha) != 1.0:
            raise ValueError(f"{family} has no width multiplier: alpha must be 1.0, not {alpha}")
    else:
        kwargs["alpha"] = float(alpha)
    return constructor(**kwargs)


def build(family: str, alpha: float, varied: bool = False):
    """construct()'s model at 224x224, called once on zeros.

    As Keras initialises them, every BatchNorm holds the same γ, β and moving
    statistics and every bias is zero, so the exporter's constant folding shares
    one initializer among all layers of a width. ``varied`` gives each of those
    tensors its own random values, as a trained checkpoint has: no initializer
    is shared.
    """
    import numpy as np

    keras = _keras()
    model = construct(family, alpha)
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


def keras_shapes(model) -> tuple[tuple[str, int, int, int], ...]:
    """(name, C, H, W) of every Conv2D, DepthwiseConv2D and Dense output, in
    the model's layer order: a Dense on a flat vector as C x 1 x 1, the way
    mnsize shapes an fc layer."""
    keras = _keras()
    shapes = []
    for layer in _layers(model):
        if isinstance(layer, (keras.layers.Conv2D, keras.layers.DepthwiseConv2D, keras.layers.Dense)):
            *spatial, channels = layer.output.shape[1:]
            height, width = spatial or (1, 1)
            shapes.append((layer.name, channels, height, width))
    return tuple(shapes)


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
    """Every model built, exported and folded into ``folder``, keyed by model_id."""
    found = {}
    for record in _in_workers(["export", str(folder)], [f"{f}:{a}" for f, a in models], workers):
        exported = Exported(**record)
        found[exported.id] = exported
    return {model_id(*model): found[model_id(*model)] for model in models}


def config_id(family: str, alpha: str, resolution: tuple[int, int]) -> str:
    return f"{family}-{alpha}-{resolution[0]}x{resolution[1]}"


@dataclass(frozen=True)
class Measured:
    """One model as construct() builds it, with Keras's own counts of it."""

    family: str
    alpha: str  # as given, e.g. "0.37"
    resolution: tuple[int, int]  # (H, W)
    count_params: int  # model.count_params()
    params: int  # keras_params(model)
    madds: int  # keras_madds(model)
    shapes: tuple[tuple[str, int, int, int], ...]  # keras_shapes(model)

    @property
    def id(self) -> str:
        return config_id(self.family, self.alpha, self.resolution)

    @classmethod
    def from_json(cls, record: dict) -> "Measured":
        return cls(**{**record, "resolution": tuple(record["resolution"]),
                      "shapes": tuple(tuple(shape) for shape in record["shapes"])})


def measure_one(family: str, alpha: str, resolution: tuple[int, int]) -> Measured:
    model = construct(family, alpha, resolution)
    # no keras.utils.clear_session() between models: its full garbage collection
    # more than doubles the time a build takes, and memory stays flat without it
    return Measured(family, alpha, resolution, model.count_params(), keras_params(model), keras_madds(model),
                    keras_shapes(model))


def measure_all(configs, workers: int | None = None) -> dict[str, Measured]:
    """Every (family, α as text, (H, W)) built and measured, keyed by config_id.
    Building is the whole cost (a few tenths of a second a model, one core);
    no model is called or exported."""
    items = [f"{family}:{alpha}:{h}x{w}" for family, alpha, (h, w) in configs]
    found = {}
    for record in _in_workers(["measure"], items, workers):
        measured = Measured.from_json(record)
        found[measured.id] = measured
    return {config_id(*config): found[config_id(*config)] for config in configs}


def _in_workers(command: list[str], items: list[str], workers: int | None = None) -> list[dict]:
    """The items shared round-robin among up to two processes of their own
    (this file run as a script: ``command`` then its share of the items), one
    thread each, since building and tracing Keras models is Python-bound; each
    prints one JSON record per item."""
    workers = workers or min(2, os.cpu_count() or 1)
    shares = [items[i::workers] for i in range(workers)]
    processes = [subprocess.Popen([sys.executable, __file__, *command, *share],
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
                 for share in shares if share]
    # read every process's pipes at once: one left waiting would block on a full pipe
    with concurrent.futures.ThreadPoolExecutor(len(processes)) as pool:
        outputs = list(pool.map(_output, processes))
    return [json.loads(line) for out in outputs for line in out.splitlines()]


def _output(process: subprocess.Popen) -> str:
    try:
        out, err = process.communicate(timeout=600)
    except subprocess.TimeoutExpired:
        process.kill()
        process.communicate()
        raise
    if process.returncode:
        raise RuntimeError(f"Keras models failed ({process.args[2]}, exit {process.returncode}):\n{err[-4000:]}")
    return out


def main(argv: list[str]) -> None:
    """``export FOLDER FAMILY:ALPHA ...`` or ``measure FAMILY:ALPHA:HxW ...``."""
    import torch

    torch.set_num_threads(1)  # one core per process: the processes share the machine
    command, *rest = argv
    if command == "export":
        folder, *models = rest
        for item in models:
            family, alpha = item.split(":")
            print(json.dumps(dataclasses.asdict(export_one(Path(folder), family, float(alpha)))), flush=True)
    elif command == "measure":
        for item in rest:
            family, alpha, size = item.split(":")
            height, width = (int(side) for side in size.split("x"))
            print(json.dumps(dataclasses.asdict(measure_one(family, alpha, (height, width)))), flush=True)
    else:
        raise SystemExit(f"unknown command {command!r}: export or measure")


if __name__ == "__main__":
    main(sys.argv[1:])
