"""Finding networks: a spec by built-in name (configs/) or by path, and the
network a command's model options name, expanded."""

from __future__ import annotations

import os
import re
from functools import lru_cache

from typing import NamedTuple

from .errors import GraphError, MnsizeError
from .expand import Config, Layer, expand, resolution_from_rho, to_alpha
from .spec import Spec, read_spec

_SPEC_MARKER = re.compile(r"^layers\s*:", re.MULTILINE)


@lru_cache(maxsize=1)
def _configs() -> str:
    # configs/, the top-level folder of the specs: mnsize/configs inside the
    # package in a wheel (setup.py puts it there), beside the package in a
    # checkout (editable install or PYTHONPATH). Plain path arithmetic, nothing
    # imported: importlib.resources and pathlib would cost more start-up time
    # than counting the network.
    package = os.path.dirname(os.path.abspath(__file__))
    inside = os.path.join(package, "configs")
    return inside if os.path.isdir(inside) else os.path.join(os.path.dirname(package), "configs")


@lru_cache(maxsize=1)
def builtin_names() -> tuple[str, ...]:
    """Names of the built-in architecture specs (configs/*.yaml with a layers table)."""
    names = (name[: -len(".yaml")] for name in os.listdir(_configs()) if name.endswith(".yaml"))
    return tuple(sorted(name for name in names if _is_spec(_builtin_path(name))))


def _builtin_path(name: str) -> str:
    return os.path.join(_configs(), f"{name}.yaml")


def _is_spec(path: str) -> bool:
    if not os.path.isfile(path):
        return False
    with open(path, encoding="utf-8") as file:
        return bool(_SPEC_MARKER.search(file.read()))


def is_path(model: str) -> bool:
    return model.endswith((".yaml", ".yml", ".onnx", ".ONNX")) or "/" in model or "\\" in model


def is_onnx(model: str) -> bool:
    return model.lower().endswith(".onnx")


def spec_path(model: str) -> str:
    """The file a model name or path is read from (a built-in name's YAML)."""
    return model if is_path(model) else _builtin_path(model)


def load_spec(model: str | os.PathLike) -> Spec:
    """A built-in spec by name ("mobilenet_v1"), or a spec file by path."""
    if not isinstance(model, str) or is_path(model):
        return read_spec(model, display=os.fspath(model))
    if re.fullmatch(r"[A-Za-z0-9_]+", model) and _is_spec(_builtin_path(model)):
        return read_spec(_builtin_path(model), display=f"configs/{model}.yaml")
    raise MnsizeError(
        f"unknown model {model!r}: built-in models are {', '.join(builtin_names())}; "
        "or give the path of a spec file (.yaml)")


def resolve_resolution(spec: Spec, resolution: int | tuple[int, int] | None = None, rho=None) -> tuple[int, int]:
    """The input size: ``resolution`` (an int for a square), or ``rho`` times
    the spec's default (mnsize.expand.resolution_from_rho), else the default."""
    if resolution is not None and rho is not None:
        raise MnsizeError("give either a resolution or rho, not both")
    if rho is not None:
        return resolution_from_rho(spec, rho)
    if isinstance(resolution, int):
        return (resolution, resolution)
    return tuple(resolution) if resolution else spec.resolution


class Network(NamedTuple):
    spec: Spec | None   # None for an ONNX file
    config: Config
    layers: tuple[Layer, ...]


def load_network(model: str, alpha=1, resolution: int | tuple[int, int] | None = None, classes: int | None = None,
                 rho=None) -> Network:
    """The spec ``model`` names, expanded at ``alpha`` and a resolution (or
    ``rho``; default the spec's), with ``classes`` outputs (default the
    spec's): what every command that counts one network starts from."""
    if is_onnx(model):
        return load_onnx(model, alpha, resolution, classes, rho)
    spec = load_spec(model)
    config = Config(model=spec.name, alpha=to_alpha(alpha), resolution=resolve_resolution(spec, resolution, rho),
                    classes=classes or spec.classes)
    return Network(spec, config, expand(spec, config.alpha, config.resolution, config.classes))


def load_onnx(path: str, alpha=1, resolution: int | tuple[int, int] | None = None, classes: int | None = None,
              rho=None) -> Network:
    """An ONNX file's layers (mnsize.onnxfile, mnsize.graph): one network, at
    its own width and classes. ``resolution`` sets the input size where the
    file leaves it symbolic."""
    if to_alpha(alpha) != 1:
        raise GraphError(f"{path}: an ONNX file is one network, at its own width: --alpha does not apply "
                          "(mnsize import writes it as a spec that scales)")
    if rho is not None:
        raise GraphError(f"{path}: an ONNX file has no default resolution to scale: give --res, not --rho")
    if classes is not None:
        raise GraphError(f"{path}: an ONNX file has its own classes: --classes does not apply")
    from .sources import read_layers

    if isinstance(resolution, int):
        resolution = (resolution, resolution)
    model = read_layers(path, resolution)
    fcs = [lay for lay in model.layers if lay.kind in ("fc", "pw")]
    config = Config(model=model.name, alpha=to_alpha(1), resolution=model.resolution,
                    classes=fcs[-1].out_shape[0] if fcs else 0)
    return Network(None, config, model.layers)
