"""An ONNX file's operations as mnsize.graph Ops, every shape resolved by mnsize.

The file is parsed with the ``onnx`` package and never run. Shapes are
propagated node by node by mnsize itself (mnsize.onnxops), since onnx's own
shape inference stops at the first Pad whose pads are computed at run time,
and every Keras export has them; what can be known without an input is
folded with numpy (mnsize.onnxfold). A weight is read only for its dims, so
external data is never followed, and a file is checked before it is walked:
its size, that it parses, its node count, where its external data would
be, every value defined and no cycle. The input may be NCHW or NHWC; a
symbolic batch is taken as 1, and every shape an Op reports is per image.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np

from .bounds import MAX_FOLDED_ELEMENTS, MAX_GRAPH_NODES, MAX_ONNX_BYTES
from .errors import GraphError
from .graph import Op
from .onnxfold import FOLDERS
from .onnxops import COUNTED, HANDLERS, NCHW, NHWC, Dyn, LayoutConflict, attributes


@dataclass(frozen=True)
class OnnxModel:
    """An ONNX file read: its operations in graph order, at ``input_shape`` (C, H, W)."""

    name: str
    path: str
    input_shape: tuple[int, int, int]
    ops: tuple[Op, ...]
    opset: int


def read_onnx(path: str | os.PathLike, resolution: int | tuple[int, int] | None = None,
              default: int | tuple[int, int] | None = None) -> OnnxModel:
    """The operations of the ONNX file at ``path``. Where the file leaves the
    input's height and width symbolic they are ``resolution``, else
    ``default``; a file's fixed size stays (a different ``resolution`` is
    refused)."""
    path = os.fspath(path)
    resolution, default = ((side, side) if isinstance(side, int) else side for side in (resolution, default))
    model = _load(path)
    graph = model.graph
    opset = next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), 0)
    order = _order(graph, path)
    name, dims, guesses = _input(graph, path)
    first = None
    for channel_axis in guesses:
        walk = _Walk(path, graph, opset)
        walk.dyn[name] = _input_tensor(path, dims, channel_axis, resolution, default)
        try:
            with np.errstate(all="ignore"):
                walk.run(order)
        except LayoutConflict as conflict:
            first = first or conflict
            continue
        channels, height, width = walk.dyn[name].image
        return OnnxModel(os.path.splitext(os.path.basename(path))[0], path, (channels, height, width),
                         tuple(walk.ops), opset)
    raise GraphError(f"{path}: {first.args[0]}: reads a tensor whose layout mnsize cannot follow "
                     "(NCHW, or NHWC transposed before each convolution)")


# --------------------------------------------------------------------------- the file


def _load(path: str):
    try:
        size = os.stat(path).st_size
    except FileNotFoundError:
        raise GraphError(f"{path}: no such file") from None
    except OSError as error:
        raise GraphError(f"{path}: cannot read the file ({error.strerror})") from None
    if os.path.isdir(path):
        raise GraphError(f"{path}: a directory, not an ONNX file")
    if size > MAX_ONNX_BYTES:
        raise GraphError(f"{path}: {size:,} bytes, more than the {MAX_ONNX_BYTES:,} an ONNX file may have")
    try:
        import onnx
    except ImportError:
        raise GraphError(f"{path}: reading an ONNX file needs the onnx package (pip install 'mnsize[onnx]')") from None
    try:
        with open(path, "rb") as file:
            data = file.read()
    except OSError as error:
        raise GraphError(f"{path}: cannot read the file ({error.strerror})") from None
    model = onnx.ModelProto()
    try:
        model.ParseFromString(data)  # never onnx.load: external data stays unread
    except Exception:  # protobuf's DecodeError, whichever implementation is installed
        raise GraphError(f"{path}: not an ONNX model (the file does not parse as one; is it truncated?)") from None
    if model.ir_version < 1 or not model.HasField("graph") or not model.graph.node:
        raise GraphError(f"{path}: not an ONNX model (no graph of nodes in it)")
    if len(model.graph.node) > MAX_GRAPH_NODES:
        raise GraphError(f"{path}: {len(model.graph.node):,} nodes, more than the {MAX_GRAPH_NODES:,} a graph may have")
    for tensor in model.graph.initializer:
        if tensor.data_location == onnx.TensorProto.EXTERNAL:
            location = next((entry.value for entry in tensor.external_data if entry.key == "location"), "")
            parts = location.replace("\\", "/").split("/")
            if os.path.isabs(location) or location.startswith(("/", "\\")) or ":" in location or ".." in parts:
                raise GraphError(f"{path}: initializer {tensor.name!r} keeps its data outside the model's folder "
                                 f"({location!r}); mnsize refuses it")
    return model


def _order(graph, path: str) -> list:
    """(1-based position, node) in an order that defines every value before
    it is read: the file's own when it is one."""
    known = {t.name for t in graph.initializer} | {v.name for v in graph.input}
    known |= {t.values.name for t in graph.sparse_initializer}
    producer: dict[str, int] = {}
    for position, node in enumerate(graph.node, 1):
        for out in node.output:
            if out and out not in known:
                producer[out] = position
    nodes = list(enumerate(graph.node, 1))
    for position, node in nodes:
        for name in node.input:
            if name and name not in known and name not in producer:
                raise GraphError(f"{path}: node {position} ({node.op_type} {node.name!r}) reads {name!r}, "
                                 "which nothing in the graph defines")
    if all(not n or n in known or producer[n] < position for position, node in nodes for n in node.input):
        return nodes
    # Kahn's algorithm: ONNX asks for a topological order, but acyclic is enough
    waiting = {position: {producer[n] for n in node.input if n and n not in known} for position, node in nodes}
    readers: dict[int, list[int]] = {}
    for position, needs in waiting.items():
        for need in needs:
            readers.setdefault(need, []).append(position)
    ready = sorted((p for p, needs in waiting.items() if not needs), reverse=True)
    order = []
    while ready:
        position = ready.pop()
        order.append(nodes[position - 1])
        for reader in readers.get(position, ()):
            waiting[reader].discard(position)
            if not waiting[reader]:
                ready.append(reader)
    if len(order) < len(nodes):
        position = min(p for p, needs in waiting.items() if needs)
        node = graph.node[position - 1]
        raise GraphError(f"{path}: the graph has a cycle through node {position} ({node.op_type} {node.name!r})")
    return order


def _input(graph, path: str):
    """The image input's name, dims (None where symbolic) and the axes its
    channels may be on, likeliest first."""
    constants = {t.name for t in graph.initializer}
    inputs = [value for value in graph.input if value.name not in constants]
    if len(inputs) != 1:
        raise GraphError(f"{path}: {len(inputs)} inputs; mnsize counts a model with one image input")
    value = inputs[0]
    dims = [d.dim_value if d.HasField("dim_value") and d.dim_value > 0 else None
            for d in value.type.tensor_type.shape.dim]
    if len(dims) != 4:
        raise GraphError(f"{path}: input {value.name!r} has {len(dims)} dims; mnsize counts an image input, "
                         "(N, C, H, W) or (N, H, W, C)")
    if dims[1] is None and dims[3] is None:
        raise GraphError(f"{path}: input {value.name!r} has no fixed channel count (dims 1 and 3 are symbolic)")
    if dims[3] is None or dims[1] is None:
        return value.name, dims, ((1,) if dims[3] is None else (3,))
    # NCHW is ONNX's own layout; a few channels after a wide image is Keras's NHWC. A
    # convolution reading the other layout sends the walk back to try it.
    return value.name, dims, ((3, 1) if dims[3] <= 4 < dims[1] else (1, 3))


def _input_tensor(path: str, dims: list, channel_axis: int, resolution, default) -> Dyn:
    spatial = [axis for axis in (1, 2, 3) if axis != channel_axis]
    shape = [dims[0] or 1, 0, 0, 0]
    shape[channel_axis] = dims[channel_axis]
    for side, axis in enumerate(spatial):
        if dims[axis] is None:
            given = resolution or default
            if given is None:
                raise GraphError(f"{path}: the input's height and width are symbolic: pass --res to give them")
            shape[axis] = int(given[side])
        elif resolution is not None and tuple(resolution) != (dims[spatial[0]], dims[spatial[1]]):
            raise GraphError(f"{path}: the file fixes the input at {dims[spatial[0]]}x{dims[spatial[1]]}; "
                             f"--res {resolution[0]}x{resolution[1]} cannot change it")
        else:
            shape[axis] = dims[axis]
    return Dyn(tuple(shape), NCHW if channel_axis == 1 else NHWC)


# --------------------------------------------------------------------------- the walk


class _Walk:
    """Shapes and constants node by node, and an Op for every node on computed data."""

    def __init__(self, path: str, graph, opset: int) -> None:
        import onnx

        self.onnx = onnx
        self.path = path
        self.opset = opset
        self.dyn: dict[str, Dyn] = {}
        self.padded: dict[str, tuple[str, tuple[int, int]]] = {}  # zero Pads a convolution may take as its own
        self.values: dict[str, np.ndarray] = {}    # constants known
        self.tensors: dict[str, object] = {}       # initializers not read yet (their dims are enough for weights)
        self.failed: dict[str, str] = {}           # constants that cannot be known, and why
        self.ops: list[Op] = []
        for tensor in graph.initializer:
            self.tensors[tensor.name] = tensor
        for sparse in graph.sparse_initializer:
            self.failed[sparse.values.name] = f"sparse initializer {sparse.values.name!r}"

    def fail(self, where: str, message: str) -> GraphError:
        return GraphError(f"{self.path}: {where}: {message}")

    def value(self, name: str, where: str) -> np.ndarray:
        if name in self.values:
            return self.values[name]
        if name in self.tensors:
            self.read(name)
            if name in self.values:
                return self.values[name]
        if name in self.failed:
            raise self.fail(where, f"needs the value of {self.failed[name]}, which mnsize does not compute")
        raise self.fail(where, f"reads {name!r} as a constant, but it is computed from the input")

    def read(self, name: str) -> None:
        """An initializer's value, read the first time it is needed."""
        tensor = self.tensors.pop(name)
        if tensor.data_location == self.onnx.TensorProto.EXTERNAL:
            self.failed[name] = f"{name!r}, which is in external data"
            return
        try:
            self.values[name] = self.onnx.numpy_helper.to_array(tensor)
        except Exception:  # data of the wrong size or type for its dims
            self.failed[name] = f"initializer {name!r}, whose data does not match its type and dims"

    def static_shape(self, name: str, where: str) -> tuple[int, ...]:
        if name in self.tensors:
            return tuple(int(d) for d in self.tensors[name].dims)
        return tuple(self.value(name, where).shape)

    def ints(self, node, index: int, where: str, attribute: str | None = None, opset: int = 0) -> list[int] | None:
        """An optional list of ints: an attribute before ``opset``, an input from it."""
        if attribute is not None and self.opset < opset:
            return attributes(node, self, where).get(attribute)
        if len(node.input) > index and node.input[index]:
            if node.input[index] in self.dyn:
                raise self.fail(where, f"input {index + 1} is computed from the input's values, not its shape")
            return [int(v) for v in np.asarray(self.value(node.input[index], where)).ravel()]
        return None

    def run(self, order) -> None:
        for position, node in order:
            where = f"node {position} ({node.op_type} {node.name!r})"
            if not any(name in self.dyn for name in node.input if name):
                self.fold(node, where)
                continue
            handler = HANDLERS.get(node.op_type) if node.domain in ("", "ai.onnx") else None
            if handler is None:
                raise self.fail(where, f"op type {node.op_type} is not counted ({COUNTED})")
            if node.input[0] not in self.dyn and node.op_type not in ("Add", "Mul", "Sub", "Div", "MatMul", "Gemm"):
                raise self.fail(where, "its data is a constant but another input is computed from the input")
            try:
                handler(self, node, position, where)
            except (GraphError, LayoutConflict):
                raise
            except (TypeError, ValueError, IndexError, KeyError, ZeroDivisionError, OverflowError) as error:
                # a malformed node (an attribute of the wrong type, a tensor of the wrong rank)
                raise self.fail(where, f"cannot be read ({type(error).__name__}: {error})") from None

    def fold(self, node, where: str) -> None:
        """A node on constants only: computed now, or marked as unknown (an
        error only if something needs its value)."""
        folder = FOLDERS.get(node.op_type) if node.domain in ("", "ai.onnx") else None
        if node.op_type == "Identity" and node.input and node.input[0] in self.tensors:
            self.tensors[node.output[0]] = self.tensors[node.input[0]]
            return
        if folder is None:
            for out in node.output:
                self.failed[out] = f"{where} (op type {node.op_type} on constants)"
            return
        for name in node.input:
            if name in self.tensors:
                self.read(name)
            if name in self.failed:  # unknown in, unknown out
                for out in node.output:
                    self.failed[out] = self.failed[name]
                return
        try:
            inputs = [self.values[name] if name else None for name in node.input]
            results = [np.asarray(result) for result in folder(inputs, attributes(node, self, where), self.opset)]
            if any(result.size > MAX_FOLDED_ELEMENTS for result in results):
                raise ValueError("too large a constant")
        except GraphError:
            raise
        except Exception as error:  # numpy's complaint about a malformed computation on constants
            for out in node.output:
                self.failed[out] = f"{where}, which cannot be computed ({type(error).__name__}: {error})"
            return
        for out, result in zip(node.output, results):
            if out:
                self.values[out] = result

    def emit(self, node, position: int, kind: str, x: str, out: Dyn, **fields) -> None:
        inputs = fields.pop("inputs", None) or tuple(name for name in node.input if name in self.dyn)
        self.ops.append(Op(index=position, name=node.name or node.output[0], op_type=node.op_type, kind=kind,
                           inputs=inputs, output=node.output[0], in_shape=self.dyn[x].image, out_shape=out.image,
                           **fields))
        self.dyn[node.output[0]] = out
        for extra in node.output[1:]:
            if extra:
                self.failed[extra] = f"{node.op_type} output {extra!r}"
