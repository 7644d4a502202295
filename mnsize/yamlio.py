"""Reading YAML input files safely, keeping line numbers for error messages.

YAML's safe loader only: a tag that would build a Python object
(``!!python/object``) is an error, never executed. Numbers and booleans are
read as YAML 1.2's core schema reads them, in plain decimal only: ``1:30``,
``0x10``, ``0o17``, ``017``, ``1_000`` and ``yes``/``no``/``on``/``off``
stay strings (YAML 1.1 would read 90, 16, 15, 15, 1000 and booleans), so
a field that wants a number refuses them instead of taking a value the
writer did not mean."""

from __future__ import annotations

import os
import re
import stat

import yaml

from .bounds import MAX_DEPTH, MAX_FILE_BYTES, MAX_YAML_DIGITS
from .errors import FileError, MnsizeError, show

_INT = re.compile(r"^[-+]?(?:0|[1-9][0-9]*)$")
_FLOAT = re.compile(r"^[-+]?(?:\.[0-9]+|(?:0|[1-9][0-9]*)(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?$"
                    r"|^[-+]?\.(?:inf|Inf|INF)$|^\.(?:nan|NaN|NAN)$")
_BOOL = re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$")
_NULL = re.compile(r"^(?:~|null|Null|NULL|)$")
_INT_TAG = "tag:yaml.org,2002:int"
_FLOAT_TAG = "tag:yaml.org,2002:float"
_BOOL_TAG = "tag:yaml.org,2002:bool"


_TOO_DEEP = f"nested more than {MAX_DEPTH} levels deep; no file mnsize reads needs that"


class _Refused(Exception):
    """A document mnsize will not take, and the line where it says so."""

    def __init__(self, message: str, mark) -> None:
        super().__init__(message)
        self.message = message
        self.line = mark.line + 1 if mark is not None else None


class _Resolver(yaml.resolver.BaseResolver):
    """Implicit types of plain scalars: null, true/false, decimal integers and
    decimal floats (with .inf and .nan, which the fields' checks refuse).

    Also the composer's depth gauge: both composers (libyaml's and PyYAML's)
    call descend_resolver before they compose a node and ascend_resolver
    after, so counting here refuses a value inside more than MAX_DEPTH
    collections before the composer recurses any further, whatever the
    syntax that nests it (block, flow, compact ``- -``, ``? ?`` keys)."""

    def __init__(self) -> None:
        super().__init__()
        self.depth = 0

    def descend_resolver(self, current_node, current_index) -> None:
        self.depth += 1
        if self.depth > MAX_DEPTH + 1:
            raise _Refused(_TOO_DEEP, current_node.start_mark if current_node is not None else None)

    def ascend_resolver(self) -> None:
        self.depth -= 1


# (tag, form, the characters a scalar of that form can start with): the
# integer form before the float form, which matches integers too
for _tag, _form, _first in ((_BOOL_TAG, _BOOL, "tTfF"),
                            (_INT_TAG, _INT, "-+0123456789"),
                            (_FLOAT_TAG, _FLOAT, "-+.0123456789"),
                            ("tag:yaml.org,2002:null", _NULL, ["~", "n", "N", ""]),
                            ("tag:yaml.org,2002:merge", re.compile(r"^<<$"), "<")):
    _Resolver.add_implicit_resolver(_tag, _form, list(_first))


class _Constructor(yaml.constructor.SafeConstructor):
    """The safe constructor, held to the same decimal forms where a tag asks
    for a number or a boolean explicitly (``!!int 0x10``)."""

    def _scalar(self, node, form: re.Pattern, expected: str) -> str:
        value = self.construct_scalar(node)
        if not form.match(value):
            raise yaml.constructor.ConstructorError(None, None, f"expected {expected}, got {show(value)}",
                                                    node.start_mark)
        return value

    def construct_yaml_int(self, node):
        value = self._scalar(node, _INT, "a decimal integer")
        digits = len(value.lstrip("+-"))
        if digits > MAX_YAML_DIGITS:
            raise _Refused(f"an integer of {digits:,} digits; mnsize reads at most {MAX_YAML_DIGITS}", node.start_mark)
        return int(value)

    def construct_yaml_float(self, node):
        value = self._scalar(node, _FLOAT, "a decimal number")
        if value.lstrip("+-").lower() in (".inf", ".nan"):
            value = value.replace(".", "")  # as Python spells them
        return float(value)

    def construct_yaml_bool(self, node):
        return self._scalar(node, _BOOL, "true or false").lower() == "true"


_Constructor.add_constructor(_INT_TAG, _Constructor.construct_yaml_int)
_Constructor.add_constructor(_FLOAT_TAG, _Constructor.construct_yaml_float)
_Constructor.add_constructor(_BOOL_TAG, _Constructor.construct_yaml_bool)

if yaml.__with_libyaml__:
    class _Loader(yaml.cyaml.CParser, _Constructor, _Resolver):
        def __init__(self, stream):
            yaml.cyaml.CParser.__init__(self, stream)
            _Constructor.__init__(self)
            _Resolver.__init__(self)
else:  # PyYAML built without libyaml: the same, in Python
    class _Loader(yaml.reader.Reader, yaml.scanner.Scanner, yaml.parser.Parser, yaml.composer.Composer,
                  _Constructor, _Resolver):
        def __init__(self, stream):
            yaml.reader.Reader.__init__(self, stream)
            yaml.scanner.Scanner.__init__(self)
            yaml.parser.Parser.__init__(self)
            yaml.composer.Composer.__init__(self)
            _Constructor.__init__(self)
            _Resolver.__init__(self)


_KINDS = ((stat.S_ISDIR, "a directory"), (stat.S_ISFIFO, "a FIFO"), (stat.S_ISSOCK, "a socket"),
          (stat.S_ISCHR, "a device"), (stat.S_ISBLK, "a device"))


def read_bytes(path: str | os.PathLike, shown: str, limit: int = MAX_FILE_BYTES,
               error: type[FileError] = FileError, missing: str = "no such file") -> bytes:
    """The bytes of a regular file of at most ``limit`` bytes, or one clear
    error naming it. A FIFO, socket or device is refused before anything is
    read from it: opened without blocking, it cannot hang the reader."""
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_BINARY", 0))
    except FileNotFoundError:
        raise MnsizeError(f"{shown}: {missing}") from None
    except OSError as exc:
        kind = _kind(path)
        if kind:
            raise MnsizeError(f"{shown}: is {kind}, not a regular file") from None
        raise MnsizeError(f"{shown}: cannot read: {exc.strerror}") from None
    except ValueError as exc:  # a NUL byte in the name, say
        raise MnsizeError(f"{shown!r}: cannot read: {exc}") from None
    mode = os.fstat(fd).st_mode
    if not stat.S_ISREG(mode):
        os.close(fd)
        kind = next((name for test, name in _KINDS if test(mode)), "not a file")
        raise MnsizeError(f"{shown}: is {kind}, not a regular file")
    with open(fd, "rb") as file:
        try:
            raw = file.read(limit + 1)
        except OSError as exc:
            raise MnsizeError(f"{shown}: cannot read: {exc.strerror}") from None
    if len(raw) > limit:
        raise error(f"file is larger than {limit:,} bytes, the most mnsize reads", file=shown)
    return raw


def _kind(path) -> str | None:
    try:
        mode = os.stat(path).st_mode
    except (OSError, ValueError):
        return None
    return next((name for test, name in _KINDS if test(mode)), None)


def read_text(path: str | os.PathLike, shown: str, error: type[FileError] = FileError) -> str:
    """The UTF-8 text of a regular file, or one clear error naming it."""
    raw = read_bytes(path, shown, MAX_FILE_BYTES, error)
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise error(f"not UTF-8 text (byte {exc.start})", file=shown) from None


def _check_keys(root: yaml.Node) -> None:
    """Refuse a key given twice in one mapping (YAML's loaders keep the last,
    silently). Each collection is visited once, however often aliases repeat
    it, without recursion, the earliest duplicate first. Keys are compared
    as written, with their type: ``1`` and ``'1'`` are two keys."""
    seen: set[int] = set()
    stack = [root]
    while stack:
        node = stack.pop()
        if id(node) in seen:
            continue
        seen.add(id(node))
        if isinstance(node, yaml.MappingNode):
            first: dict[tuple[str, str], int] = {}
            for key, _ in node.value:
                if isinstance(key, yaml.ScalarNode):
                    if (key.tag, key.value) in first:
                        raise _Refused(f"duplicate key {show(key.value)} (first at line {first[key.tag, key.value]})",
                                       key.start_mark)
                    first[key.tag, key.value] = key.start_mark.line + 1
            children = [child for pair in node.value for child in pair]
        elif isinstance(node, yaml.SequenceNode):
            children = node.value
        else:
            continue
        stack.extend(child for child in reversed(children) if not isinstance(child, yaml.ScalarNode))


def load_yaml(text: str, file: str, error: type[FileError] = FileError) -> tuple[object, yaml.Node | None]:
    """The document's data and its node tree (for line numbers)."""
    try:
        loader = _Loader(text)
        try:
            node = loader.get_single_node()
            if node is not None:
                _check_keys(node)
            data = loader.construct_document(node) if node is not None else None
        finally:
            loader.dispose()
    except _Refused as exc:
        raise error(exc.message, file=file, line=exc.line) from None
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark is not None else None
        problem = exc.problem or exc.context or "invalid YAML"
        if "nesting depth" in problem:  # PyYAML 6.0.4 and later refuse deep nesting in the parser, before us
            raise error(_TOO_DEEP, file=file, line=line) from None
        raise error(f"invalid YAML: {problem}", file=file, line=line) from None
    except yaml.YAMLError as exc:
        raise error(f"invalid YAML: {exc}", file=file) from None
    except (ValueError, TypeError, OverflowError) as exc:  # an explicit tag's value, such as !!timestamp 2024-13-45
        raise error(f"invalid YAML: {show(str(exc))}", file=file) from None
    except RecursionError:
        raise error("invalid YAML: nested too deeply", file=file) from None
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
