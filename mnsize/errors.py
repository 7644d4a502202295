"""Errors are values until the edge: the CLI turns every MnsizeError into one
line on stderr and exit status 2."""

from __future__ import annotations

import reprlib

_SHORT = reprlib.Repr()
_SHORT.maxstring = 60
_SHORT.maxother = 60
_SHORT.maxlist = _SHORT.maxtuple = _SHORT.maxdict = _SHORT.maxset = 4
_SHORT.maxlevel = 2
_SHORT.maxlong = 40


#: the most characters show() gives: reprlib bounds each part of a value, not the whole (four mappings of four
#: 60-character strings would be a thousand)
MAX_SHOWN = 200


def show(value: object) -> str:
    """A short repr of a user's value for an error message: bounded in length
    and depth, so that a huge or self-similar value (a YAML alias bomb) costs
    nothing to describe."""
    text = _SHORT.repr(value)
    return text if len(text) <= MAX_SHOWN else text[:MAX_SHOWN - 3] + "..."


class MnsizeError(Exception):
    """Bad input or a tool failure: reported as one line, exit status 2."""


class FileError(MnsizeError):
    """A problem at a known place in an input file.

    Knows the file (and line, when known), the item within it (a spec's layer,
    a budget entry) and the key, so the message points at exactly what to fix:
    ``configs/x.yaml:14: layer 3 (dwsep): key 'stride': expected ...``.
    """

    def __init__(self, message: str, *, file: str | None = None, line: int | None = None,
                 item: str | None = None, key: str | None = None) -> None:
        self.message = message
        self.file = file
        self.line = line
        self.item = item
        self.key = key
        super().__init__(str(self))

    def __str__(self) -> str:
        where = []
        if self.file is not None:
            where.append(f"{self.file}:{self.line}" if self.line else self.file)
        if self.item is not None:
            where.append(self.item)
        if self.key is not None:
            where.append(f"key '{self.key}'")
        return ": ".join(where + [self.message])


class SpecError(FileError):
    """A layer spec that cannot be loaded or expanded; ``layer`` is the 1-based
    position in the spec's ``layers`` list."""

    def __init__(self, message: str, *, file: str | None = None, line: int | None = None,
                 layer: int | None = None, layer_label: str | None = None, key: str | None = None) -> None:
        self.layer = layer
        self.layer_label = layer_label
        item = None
        if layer is not None:
            item = f"layer {layer}" + (f" ({layer_label})" if layer_label else "")
        super().__init__(message, file=file, line=line, item=item, key=key)


class BudgetError(FileError):
    """A budgets file that cannot be loaded; ``entry`` is the 1-based position in
    its ``budgets`` list."""

    def __init__(self, message: str, *, file: str | None = None, line: int | None = None,
                 entry: int | None = None, name: str | None = None, key: str | None = None) -> None:
        self.entry = entry
        item = None
        if entry is not None:
            item = f"budget {entry}" + (f" ({name})" if name else "")
        super().__init__(message, file=file, line=line, item=item, key=key)


class ConfigError(MnsizeError):
    """A configuration a network cannot be built at: a width multiplier or a
    resolution out of range. Whoever knows where it was written (a budgets
    file's line) adds that; otherwise it is reported as it is."""


class GraphError(MnsizeError):
    """A real model (an ONNX file, a PyTorch module) that cannot be read or
    counted: the message names the file or callable and, where there is one,
    the node (its op type, name and position)."""
