"""A user's PyTorch module, by name: ``package.module:callable`` imported and
called with literal keyword arguments.

``load_callable("pkg.mod:make_net", "width_mult=0.75")`` imports the module (the
current directory importable, as ``python -m`` makes it) and calls the callable
with keyword arguments that are literals only, parsed with ``ast``, never
evaluated. Naming a callable runs the user's code. Importing this module does
not import torch.
"""

from __future__ import annotations

import ast
import copy
import importlib
import os
import sys
import warnings
from contextlib import contextmanager

from .bounds import MAX_KWARGS_CHARS
from .errors import GraphError, MnsizeError, show


WIDTH_KEYWORDS = ("width_mult", "alpha", "width_multiplier")
# the CLI prefixes the command that was run (mnsize verify, bench, profile, import)
INSTALL_HINT = ('this command builds a PyTorch model and PyTorch is not installed: pip install "mnsize[torch]" '
                '(on a CPU-only machine pin the CPU build: pip install "torch==2.13.0" "mnsize[torch]")')
LITERALS = "numbers, strings, True, False, None, tuples and lists"


# --------------------------------------------------------------------------- loading a callable


def load_callable(target: str, kwargs: str | None = None):
    """The nn.Module that ``package.module:callable`` (a dotted attribute after
    the colon: ``pkg.mod:Net.small``) returns when called with ``kwargs``.

    Every failure, from a malformed target to the callable raising, is a
    GraphError naming the target."""
    module_name, attributes = _split_target(target)
    arguments = parse_kwargs(kwargs, target)
    torch = import_torch()
    saved = list(sys.path)
    sys.path.insert(0, os.getcwd())
    importlib.invalidate_caches()  # a module written since the last import in this process
    try:
        try:
            found = importlib.import_module(module_name)
        except ModuleNotFoundError as exc:
            raise GraphError(f"{target}: cannot import {module_name!r}: no module named {exc.name!r}") from None
        except (Exception, SystemExit) as exc:
            raise GraphError(f"{target}: importing {module_name!r} raised {describe(exc)}") from None
        owner = module_name
        for attribute in attributes:
            try:
                found = getattr(found, attribute)
            except AttributeError:
                raise GraphError(f"{target}: {owner!r} has no attribute {attribute!r}") from None
            except Exception as exc:
                raise GraphError(f"{target}: reading {attribute!r} of {owner!r} raised {describe(exc)}") from None
            owner = f"{owner}.{attribute}"
        if not callable(found):
            raise GraphError(f"{target}: {owner!r} ({type(found).__name__}) is not callable")
        try:
            model = found(**arguments)
        except (Exception, SystemExit) as exc:
            raise GraphError(f"{target}: calling it raised {describe(exc)}") from None
    finally:
        sys.path[:] = saved
    if not isinstance(model, torch.nn.Module):
        raise GraphError(f"{target}: it returned an object of type {type(model).__name__}, not a torch.nn.Module")
    return model


def _split_target(target: str) -> tuple[str, list[str]]:
    module_name, colon, attribute = target.partition(":")
    parts = module_name.split(".") + attribute.split(".")
    if not colon or not all(part.isidentifier() for part in parts):
        raise GraphError(f"{show(target)}: expected package.module:callable (dotted names, one colon)")
    return module_name, attribute.split(".")


def parse_kwargs(text: str | None, target: str | None = None) -> dict[str, object]:
    """``width_mult=0.75, num_classes=10`` as a dict: keyword arguments whose
    values are literals (numbers, strings, booleans, None, tuples and lists),
    read with ``ast``; nothing in the text is evaluated."""
    where = f"{target}: --kwargs" if target else "--kwargs"
    if text is None or not text.strip():
        return {}
    if len(text) > MAX_KWARGS_CHARS:
        raise GraphError(f"{where} is {len(text):,} characters, more than {MAX_KWARGS_CHARS:,}")
    source = f"f({text})"
    try:
        call = ast.parse(source, mode="eval").body
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        call = None
    if not (isinstance(call, ast.Call) and isinstance(call.func, ast.Name) and not call.args
            and all(keyword.arg for keyword in call.keywords)):
        raise GraphError(f"{where} {show(text)}: expected name=value pairs separated by commas")
    arguments = {}
    for keyword in call.keywords:
        if keyword.arg in arguments:
            raise GraphError(f"{where}: {keyword.arg} is given twice")
        try:
            value = ast.literal_eval(keyword.value)
        except (ValueError, TypeError, SyntaxError, RecursionError, MemoryError):
            value = _REFUSED
        if not _plain(value):
            shown = show(ast.get_source_segment(source, keyword.value))
            raise GraphError(f"{where}: {keyword.arg}={shown[1:-1]}: the values must be literals ({LITERALS})")
        arguments[keyword.arg] = value
    return arguments


_REFUSED = object()


def _plain(value: object) -> bool:
    if value is None or isinstance(value, (bool, int, float, str)):
        return True
    return isinstance(value, (tuple, list)) and all(_plain(item) for item in value)


def alpha_from_kwargs(kwargs: str | None) -> str | None:
    """The width multiplier the callable is given (``width_mult``, ``alpha`` or
    ``width_multiplier``), as text for mnsize.expand.to_alpha; None if none is."""
    arguments = parse_kwargs(kwargs)
    for key in WIDTH_KEYWORDS:
        if key in arguments:
            value = arguments[key]
            if isinstance(value, bool) or not isinstance(value, (int, float, str)):
                raise GraphError(f"--kwargs: {key}={show(value)} is not a width multiplier")
            return value if isinstance(value, str) else repr(value)
    return None


def import_torch():
    """torch, or an MnsizeError that says how to install it."""
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message="Failed to initialize NumPy")
            import torch
            from torch.utils import flop_counter  # noqa: F401  (FlopCounterMode, which verify needs)
    except ImportError:
        raise MnsizeError(INSTALL_HINT) from None
    return torch


def describe(exc: BaseException) -> str:
    """An exception as one short line: its type and the first line of its message."""
    message = _first_line(exc)
    return f"{type(exc).__name__}: {message}" if message else type(exc).__name__


def _first_line(exc: BaseException) -> str:
    lines = str(exc).strip().splitlines()
    line = lines[0].strip() if lines else ""
    return line if len(line) <= 160 else line[:157] + "..."


@contextmanager
def on_meta(module):
    """The module on the meta device in eval mode: itself where it is already
    there (its train/eval flags restored afterwards), else a deep copy whose
    parameters and buffers are replaced by meta tensors before copying, so
    the weights are neither copied nor touched."""
    torch = import_torch()
    tensors = [*module.parameters(), *module.buffers()]
    if all(tensor.is_meta for tensor in tensors):
        modes = [(sub, sub.training) for sub in module.modules()]
        module.eval()
        try:
            yield module
        finally:
            for sub, training in modes:
                sub.training = training
        return
    memo: dict[int, object] = {}
    try:
        for param in module.parameters():
            memo[id(param)] = torch.nn.Parameter(torch.empty_like(param, device="meta"), param.requires_grad)
        for buffer in module.buffers():
            memo[id(buffer)] = torch.empty_like(buffer, device="meta")
        copied = copy.deepcopy(module, memo).eval()
    except Exception as exc:
        raise GraphError(f"{type(module).__name__}: cannot copy it to the meta device: {describe(exc)}") from None
    yield copied


