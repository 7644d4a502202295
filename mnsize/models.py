"""Finding specs: a built-in name (shipped in mnsize.configs) or a path."""

from __future__ import annotations

import os
import re
from functools import lru_cache

from .errors import MnsizeError
from .spec import Spec, load_spec

_SPEC_MARKER = re.compile(r"^layers\s*:", re.MULTILINE)


def _configs() -> str:
    # the folder of the mnsize.configs package: configs/ in a checkout (linked as
    # mnsize/configs), site-packages/mnsize/configs in a wheel install. Plain path
    # arithmetic: importlib.resources and pathlib would cost more start-up time
    # than counting the network.
    from . import configs

    return os.path.dirname(configs.__file__)


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
    return model.endswith((".yaml", ".yml")) or "/" in model or "\\" in model


def spec_path(model: str) -> str:
    """The file a model name or path is read from (a built-in name's YAML)."""
    return model if is_path(model) else _builtin_path(model)


def load_model(model: str) -> Spec:
    """Load a built-in spec by name, or a spec file by path."""
    if is_path(model):
        return load_spec(model, display=model)
    if re.fullmatch(r"[A-Za-z0-9_]+", model) and _is_spec(_builtin_path(model)):
        return load_spec(_builtin_path(model), display=f"configs/{model}.yaml")
    raise MnsizeError(
        f"unknown model {model!r}: built-in models are {', '.join(builtin_names())}; "
        "or give the path of a spec file (.yaml)")
