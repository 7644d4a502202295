"""Reading YAML input files safely, keeping line numbers for error messages.

YAML's safe loader only: a tag that would build a Python object
(``!!python/object``) is an error, never executed."""

from __future__ import annotations

import os
import re

import yaml

from .errors import FileError, MnsizeError

#: Limits on what mnsize reads, far above any real spec or budgets file (a
#: MobileNet spec is a few KiB): parsing stays well under a second and the C
#: YAML parser is never asked to nest deeper than it safely can.
MAX_FILE_BYTES = 128 * 2**10
MAX_DEPTH = 64
_QUOTED_OR_COMMENT = re.compile(r'"(?:[^"\\\n]|\\.)*"|\'[^\'\n]*\'|#[^\n]*')
_BRACKETS = re.compile(r"[\[\]{}]")


def read_text(path: str | os.PathLike, shown: str, error: type[FileError] = FileError) -> str:
    """The UTF-8 text of a file, or one clear error naming it."""
    try:
        with open(path, "rb") as file:
            raw = file.read(MAX_FILE_BYTES + 1)
    except FileNotFoundError:
        raise MnsizeError(f"{shown}: no such file") from None
    except IsADirectoryError:
        raise MnsizeError(f"{shown}: is a directory, not a file") from None
    except OSError as exc:
        raise MnsizeError(f"{shown}: cannot read: {exc.strerror}") from None
    except ValueError as exc:  # a NUL byte in the name, say
        raise MnsizeError(f"{shown!r}: cannot read: {exc}") from None
    if len(raw) > MAX_FILE_BYTES:
        raise error(f"file is larger than {MAX_FILE_BYTES:,} bytes, the most mnsize reads", file=shown)
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise error(f"not UTF-8 text (byte {exc.start})", file=shown) from None


def nesting_depth(text: str) -> int:
    """How deeply the document nests, by indentation and by [ ] { } brackets
    outside quotes and comments: cheap to compute before any parsing. Brackets
    are only followed when there are enough of them to nest too deeply."""
    indent = max((len(line) - len(line.lstrip(" ")) for line in text.splitlines()), default=0)
    depth = deepest = 0
    if text.count("[") + text.count("{") > MAX_DEPTH:
        for bracket in _BRACKETS.finditer(_QUOTED_OR_COMMENT.sub("", text)):
            depth += 1 if bracket.group() in "[{" else -1
            deepest = max(deepest, depth)
    return max(indent // 2, deepest)


def load_yaml(text: str, file: str, error: type[FileError] = FileError) -> tuple[object, yaml.Node | None]:
    """The document's data and its node tree (for line numbers)."""
    if nesting_depth(text) > MAX_DEPTH:
        raise error(f"nested more than {MAX_DEPTH} levels deep; no spec or budgets file needs that", file=file)
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)(text)
    try:
        node = loader.get_single_node()
        data = loader.construct_document(node) if node is not None else None
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark is not None else None
        problem = exc.problem or exc.context or "invalid YAML"
        raise error(f"invalid YAML: {problem}", file=file, line=line) from None
    except yaml.YAMLError as exc:
        raise error(f"invalid YAML: {exc}", file=file) from None
    except RecursionError:
        raise error("invalid YAML: nested too deeply", file=file) from None
    finally:
        loader.dispose()
    return data, node


def key_lines(node: yaml.Node | None) -> dict[str, int]:
    """Line (1-based) of each key of a YAML mapping node."""
    if not isinstance(node, yaml.MappingNode):
        return {}
    return {str(k.value): k.start_mark.line + 1 for k, _ in node.value if isinstance(k, yaml.ScalarNode)}


def child(node: yaml.Node | None, key: str) -> yaml.Node | None:
    """The value node of ``key`` in a mapping node."""
    if isinstance(node, yaml.MappingNode):
        for k, v in node.value:
            if isinstance(k, yaml.ScalarNode) and k.value == key:
                return v
    return None


def items(node: yaml.Node | None) -> list[yaml.Node]:
    """The item nodes of a sequence node."""
    return list(node.value) if isinstance(node, yaml.SequenceNode) else []


def line_of(node: yaml.Node | None) -> int | None:
    return node.start_mark.line + 1 if node is not None else None
