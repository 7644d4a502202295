"""Errors are values until the edge: the CLI turns every MnsizeError into one
line on stderr and exit status 2."""

from __future__ import annotations


class MnsizeError(Exception):
    """Bad input or a tool failure: reported as one line, exit status 2."""


class SpecError(MnsizeError):
    """A layer spec that cannot be loaded or expanded.

    Knows where the problem is: the file (and line, when known), the layer
    (its 1-based position in the spec's ``layers`` list and its kind or name)
    and the key, so the message points at exactly what to fix.
    """

    def __init__(
        self,
        message: str,
        *,
        file: str | None = None,
        line: int | None = None,
        layer: int | None = None,
        layer_label: str | None = None,
        key: str | None = None,
    ) -> None:
        self.message = message
        self.file = file
        self.line = line
        self.layer = layer
        self.layer_label = layer_label
        self.key = key
        super().__init__(str(self))

    def __str__(self) -> str:
        where = []
        if self.file is not None:
            where.append(f"{self.file}:{self.line}" if self.line else self.file)
        if self.layer is not None:
            label = f" ({self.layer_label})" if self.layer_label else ""
            where.append(f"layer {self.layer}{label}")
        if self.key is not None:
            where.append(f"key '{self.key}'")
        return ": ".join(where + [self.message])
