"""Finding specs: a built-in name (shipped in mnsize.configs) or a path."""

from __future__ import annotations

import re
from functools import lru_cache
from importlib import resources
from pathlib import Path

from .errors import MnsizeError
from .spec import Spec, load_spec

_SPEC_MARKER = re.compile(r"^layers\s*:", re.MULTILINE)


def _configs():
    return resources.files("mnsize.configs")


@lru_cache(maxsize=1)
def builtin_names() -> tuple[str, ...]:
    """Names of the built-in architecture specs (configs/*.yaml with a layers table)."""
    return tuple(sorted(e.name[: -len(".yaml")] for e in _configs().iterdir() if _is_spec(e)))


def _is_spec(entry) -> bool:
    return entry.name.endswith(".yaml") and entry.is_file() and bool(
        _SPEC_MARKER.search(entry.read_text(encoding="utf-8")))


def is_path(model: str) -> bool:
    return model.endswith((".yaml", ".yml")) or "/" in model or "\\" in model


def load_model(model: str) -> Spec:
    """Load a built-in spec by name, or a spec file by path."""
    if is_path(model):
        return load_spec(Path(model), display=model)
    entry = _configs() / f"{model}.yaml"
    if re.fullmatch(r"[A-Za-z0-9_]+", model) and _is_spec(entry):
        with resources.as_file(entry) as path:
            return load_spec(path, display=f"configs/{model}.yaml")
    raise MnsizeError(
        f"unknown model {model!r}: built-in models are {', '.join(builtin_names())}; "
        "or give the path of a spec file (.yaml)")
