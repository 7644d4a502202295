"""Real models as inputs: an ONNX file or a PyTorch module named
``package.module:callable``, read into the engine's layers (mnsize.graph) or
into the weighted operations ``verify --against`` compares.

Reading an ONNX file needs the ``onnx`` package and never runs the model;
naming a callable imports and runs the user's code, so only the commands
that say so take one (import, verify --against), never a budgets file.
"""

from __future__ import annotations

import os
from typing import NamedTuple

from .errors import MnsizeError
from .expand import Layer
from .graph import Atom


class RealModel(NamedTuple):
    name: str                        # the file's stem, or the callable's name
    layers: tuple[Layer, ...]
    resolution: tuple[int, int]      # the input size it was read at


def is_callable_target(source: str) -> bool:
    """``package.module:callable`` (a PyTorch module), as opposed to a file path."""
    if source.lower().endswith(".onnx") or ":" not in source:
        return False
    head = source.split(":", 1)[0]
    return bool(head) and "/" not in head and "\\" not in head and len(head) > 1


def read_layers(source: str, resolution: tuple[int, int] | None = None, kwargs: str | None = None,
                default: tuple[int, int] | None = None, channels: int = 3) -> RealModel:
    """The layers of an ONNX file (at its own input size; ``resolution``, else
    ``default``, where that is symbolic) or of a PyTorch module (traced at
    ``resolution``, else ``default``, else 224)."""
    from .graph import to_layers

    if is_callable_target(source):
        from .torchgraph import trace
        from .torchload import load_callable

        module = load_callable(source, kwargs)
        side = resolution or default or (224, 224)
        layers = to_layers(trace(module, (channels, *side), name=source), source)
        return RealModel(source.rsplit(":", 1)[1].rsplit(".", 1)[-1], layers, side)
    if kwargs is not None:
        raise MnsizeError("--kwargs applies to a PyTorch module (package.module:callable), not to a file")
    from .onnxfile import read_onnx

    model = read_onnx(source, resolution, default=default)
    return RealModel(os.path.splitext(os.path.basename(source))[0], to_layers(model.ops, source),
                     tuple(model.input_shape[1:]))


def read_atoms(source: str, resolution: tuple[int, int] | None, kwargs: str | None, channels: int,
               default: tuple[int, int]) -> tuple[tuple[Atom, ...], tuple[int, int]]:
    """The real model's weighted operations, counted independently of the
    spec's formulas, and the input size they were counted at: the ONNX
    counter's for a file; FlopCounterMode and numel() per module for a
    PyTorch module."""
    if is_callable_target(source):
        from .torchcount import module_atoms
        from .torchload import load_callable

        side = resolution or default
        return module_atoms(load_callable(source, kwargs), (channels, *side), name=source), side
    from .graph import layer_atoms

    model = read_layers(source, resolution, kwargs, default, channels)
    return layer_atoms(model.layers), model.resolution
