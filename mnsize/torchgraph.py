"""A PyTorch module's forward traced into Ops (mnsize.graph).

``trace`` reads the module's forward with ``torch.export`` on the meta device
(shapes without memory) and maps each ATen call on data computed from the input
to an Op, named after the module that ran it (``nn_module_stack``); an ATen op
with no mapping is refused, naming the node, never counted as a silent zero.
Importing this module does not import torch.
"""

from __future__ import annotations

import io
import logging
import math
import warnings
from contextlib import contextmanager, redirect_stderr

from .errors import GraphError
from .torchload import describe, import_torch, on_meta
from .graph import Op


# --------------------------------------------------------------------------- tracing into Ops


def trace(module, input_shape: tuple[int, int, int], name: str | None = None) -> tuple[Op, ...]:
    """The module's forward on one ``input_shape`` (C, H, W) image as Ops, in
    the order the exported graph runs them; ``name`` (default: the module's
    class) starts every error message.

    The graph is the one ``torch.export.export`` gives; where one of its ops
    has no mapping, the graph is decomposed to core ATen
    (``run_decompositions``) and read again, and if that fails too the
    first graph's node is named."""
    torch = import_torch()
    name = name or type(module).__name__
    with on_meta(module) as model, _quiet():
        example = (torch.empty((1, *input_shape), device="meta"),)
        try:
            program = torch.export.export(model, example)
        except Exception as exc:
            raise GraphError(f"{name}: torch.export cannot trace it: {describe(exc)}") from None
    try:
        return _Walker(program, name).ops()
    except GraphError as first:
        try:
            with _quiet():
                decomposed = program.run_decompositions()
            return _Walker(decomposed, name).ops()
        except Exception:
            raise first from None


@contextmanager
def _quiet():
    """torch.export logs, warns and prints (the partial graph, to stderr) what
    it guards on and cannot trace through; the one line mnsize reports says
    what matters."""
    previous = logging.root.manager.disable
    logging.disable(logging.ERROR)
    try:
        with warnings.catch_warnings(), redirect_stderr(io.StringIO()):
            warnings.simplefilter("ignore")
            yield
    finally:
        logging.disable(previous)


#: ATen ops (by name, an in-place variant's trailing "_" dropped) that move or
#: relabel data and compute nothing the paper counts
FREE_OPS = frozenset({
    "view", "_unsafe_view", "reshape", "flatten", "permute", "transpose", "t", "expand", "clone", "contiguous",
    "alias", "detach", "lift_fresh_copy", "_to_copy", "to", "_assert_tensor_metadata", "squeeze", "unsqueeze",
    "dropout", "native_dropout", "feature_dropout", "alpha_dropout", "getitem", "softmax", "_softmax",
    "log_softmax", "_log_softmax", "cat", "constant_pad_nd", "pad"})
ACTIVATION_OPS = ("relu", "relu6", "hardswish", "hardsigmoid", "sigmoid", "silu", "gelu")
ELTWISE_OPS = {"add": "add", "sub": "sub", "rsub": "sub", "mul": "mul", "div": "div"}


class _Walker:
    """Reads an exported program's call_function nodes, in order, into Ops.

    A node is on computed data when one of its inputs is the model's input or
    another such node; the others (weights transposed, shapes) are folded, as
    a runtime folds them, and give no Op."""

    def __init__(self, program, name: str) -> None:
        self.program = program
        self.name = name
        signature = program.graph_signature
        self.computed: set[str] = set(signature.user_inputs)
        self.constants = dict(signature.inputs_to_lifted_tensor_constants)
        self.alias: dict[str, str] = {}  # a tensor an in-place op changed -> that op's output

    def ops(self) -> tuple[Op, ...]:
        ops, index = [], 0
        for node in self.program.graph.nodes:
            if node.op != "call_function":
                continue
            index += 1
            inputs = [source for source in node.all_input_nodes if source.name in self.computed]
            if not inputs:
                continue
            target = node.target
            op_type = str(target) if hasattr(target, "_overloadpacket") else getattr(target, "__name__", str(target))
            key = target._overloadpacket.__name__ if hasattr(target, "_overloadpacket") else op_type
            in_place = key.endswith("_") and not key.endswith("__")
            key = key[:-1] if in_place else key
            name = _module_path(node) or node.name
            where = f"{self.name}: node {index} ({op_type} {name!r})"
            handler = HANDLERS.get(key)
            if handler is None:
                raise GraphError(f"{where}: no mapping for this op; mnsize reads convolutions, linear layers, "
                                 f"BatchNorm, activations, element-wise arithmetic, pooling and data movement")
            fields = handler(self, node, key, _arguments(node), where)
            ops.append(Op(index, name, op_type, inputs=tuple(self.resolve(source.name) for source in inputs),
                          output=node.name, in_shape=_shape(inputs[0]), out_shape=_shape(node), **fields))
            self.computed.add(node.name)
            if in_place and node.args and hasattr(node.args[0], "name"):
                self.alias[node.args[0].name] = node.name
        return tuple(ops)

    def resolve(self, name: str) -> str:
        while name in self.alias:
            name = self.alias[name]
        return name

    def is_computed(self, value) -> bool:
        return getattr(value, "name", None) in self.computed

    def weight(self, value, where: str, role: str) -> tuple[int, ...]:
        """The shape of a weight operand: a parameter or constant, never computed."""
        if self.is_computed(value):
            raise GraphError(f"{where}: its {role} is computed from the input, not a parameter")
        if not hasattr(getattr(value, "meta", {}).get("val"), "shape"):
            raise GraphError(f"{where}: its {role} is not a tensor of known shape")
        return _full_shape(value)

    def scalar(self, value) -> float | None:
        """A one-element constant's number, where the program holds its data."""
        tensor = self.program.constants.get(self.constants.get(getattr(value, "name", None)))
        return float(tensor.reshape(-1)[0]) if tensor is not None and not tensor.is_meta else None


def _arguments(node) -> list:
    """The node's arguments by position, keyword arguments and defaults filled in from the op's schema."""
    args = list(node.args)
    schema = getattr(node.target, "_schema", None)
    for argument in schema.arguments[len(args):] if schema is not None else ():
        default = argument.default_value if argument.has_default_value() else None
        args.append(node.kwargs.get(argument.name, default))
    return args


def _module_path(node) -> str:
    """The path of the innermost module whose forward ran the node ('' at the top)."""
    stack = node.meta.get("nn_module_stack")
    return list(stack.values())[-1][0].split("@")[0] if stack else ""


def _full_shape(node) -> tuple[int, ...]:
    """The shape of the tensor a node makes (of the first, where it makes several)."""
    value = node.meta.get("val")
    value = value[0] if isinstance(value, (tuple, list)) and value else value
    return tuple(int(size) for size in value.shape) if hasattr(value, "shape") else ()


def _shape(node) -> tuple[int, ...]:
    """Per image: the batch dimension dropped."""
    return _full_shape(node)[1:]


def _pair(value) -> tuple[int, int]:
    if isinstance(value, (list, tuple)):
        return (int(value[0]), int(value[-1])) if value else (1, 1)
    return (int(value), int(value))


def _conv(walker: _Walker, node, key: str, args: list, where: str) -> dict:
    if key == "convolution":
        stride, dilation, transposed, groups = args[3], args[5], args[6], args[8]
    else:
        stride, dilation, transposed, groups = args[3], args[5], False, args[6]
    weight = walker.weight(args[1], where, "weight")
    if transposed or len(weight) != 4:
        raise GraphError(f"{where}: a {'transposed' if transposed else f'{len(weight) - 2}-D'} convolution; "
                         f"mnsize counts 2-D convolutions")
    bias = walker.weight(args[2], where, "bias") if args[2] is not None else ()
    return dict(kind="conv", kernel=weight[2:], stride=_pair(stride), dilation=_pair(dilation), groups=int(groups),
                weights=math.prod(weight), bias=math.prod(bias) if bias else 0)


def _gemm(walker: _Walker, node, key: str, args: list, where: str) -> dict:
    """linear(x, W, b); addmm(b, x, W); mm and matmul with one constant operand."""
    if key == "linear":
        operands, bias = args[1:2], args[2]
    else:
        operands, bias = (args[1:3], args[0]) if key == "addmm" else (args[:2], None)
    weights = [value for value in operands if not walker.is_computed(value)]
    if not weights:
        raise GraphError(f"{where}: a product of two computed tensors (as attention has) is not a layer "
                         f"mnsize counts")
    bias_shape = walker.weight(bias, where, "bias") if bias is not None else ()
    return dict(kind="gemm", weights=math.prod(walker.weight(weights[0], where, "weight")),
                bias=math.prod(bias_shape) if bias is not None else 0)


def _activation(walker: _Walker, node, key: str, args: list, where: str) -> dict:
    if key in ("hardtanh", "clamp", "clamp_min"):
        low, high = args[1], (args[2] if key != "clamp_min" else None)
        bounds = {(0, 6): "relu6", (0, None): "relu"}
        if (low, high) not in bounds:
            raise GraphError(f"{where}: {key} to [{low}, {high}] is none of the activations mnsize reads "
                             f"(ReLU is [0, inf), ReLU6 [0, 6])")
        return dict(kind="act", act=bounds[low, high])
    return dict(kind="act", act=key)


def _eltwise(walker: _Walker, node, key: str, args: list, where: str) -> dict:
    operator = ELTWISE_OPS[key]
    first, second = args[0], args[1]
    if walker.is_computed(first) and walker.is_computed(second):
        return dict(kind="eltwise", operator=operator)
    mine, other = (first, second) if walker.is_computed(first) else (second, first)
    if isinstance(other, (bool, int, float)):
        return dict(kind="eltwise", operator=operator, constant="scalar", value=float(other))
    shape, full = walker.weight(other, where, "operand"), _full_shape(mine)
    if math.prod(shape) == 1:
        return dict(kind="eltwise", operator=operator, constant="scalar", value=walker.scalar(other))
    padded = (1,) * (len(full) - len(shape)) + shape
    varying = [axis for axis, size in enumerate(padded) if size != 1]
    if len(padded) == len(full) and len(varying) == 1 and varying[0] in (1, len(full) - 1) and \
            padded[varying[0]] == full[varying[0]]:
        return dict(kind="eltwise", operator=operator, constant="channel")
    raise GraphError(f"{where}: {operator} with a constant of shape {list(shape)}, neither one number nor one "
                     f"per channel of the {list(full[1:])} input")


def _mean(walker: _Walker, node, key: str, args: list, where: str) -> dict:
    rank = len(_full_shape(node.args[0]))
    dims = args[1] if len(args) > 1 and isinstance(args[1], (list, tuple)) else list(range(rank))
    if rank == 4 and {int(dim) % rank for dim in dims} == {2, 3}:
        return dict(kind="gap")
    raise GraphError(f"{where}: a mean over dims {list(dims)} of a rank-{rank} tensor is not a global average "
                     f"pooling over H and W")


def _adaptive(walker: _Walker, node, key: str, args: list, where: str) -> dict:
    shape = _full_shape(node.args[0])
    if len(shape) != 4:
        raise GraphError(f"{where}: an adaptive average pooling of a rank-{len(shape)} tensor")
    height, width = shape[2:]
    out = _pair(args[1])
    if out == (1, 1):
        return dict(kind="gap")
    if out == (height, width):
        return dict(kind="free")
    if height % out[0] or width % out[1]:
        raise GraphError(f"{where}: an adaptive average pooling from {height}x{width} to {out[0]}x{out[1]} has "
                         f"windows of unequal sizes")
    window = (height // out[0], width // out[1])
    return dict(kind="avgpool", kernel=window, stride=window)


def _pool(walker: _Walker, node, key: str, args: list, where: str) -> dict:
    kernel = _pair(args[1])
    stride = _pair(args[2]) if args[2] else kernel
    return dict(kind="maxpool" if key.startswith("max") else "avgpool", kernel=kernel, stride=stride)


def _fixed(kind: str):
    return lambda walker, node, key, args, where: dict(kind=kind)


HANDLERS = {
    "conv2d": _conv, "convolution": _conv,
    "linear": _gemm, "addmm": _gemm, "mm": _gemm, "matmul": _gemm,
    **dict.fromkeys(("batch_norm", "_native_batch_norm_legit_no_training", "native_batch_norm",
                     "_native_batch_norm_legit"), _fixed("batchnorm")),
    **dict.fromkeys(ACTIVATION_OPS + ("hardtanh", "clamp", "clamp_min"), _activation),
    **dict.fromkeys(ELTWISE_OPS, _eltwise),
    "mean": _mean, "adaptive_avg_pool2d": _adaptive, "_adaptive_avg_pool2d": _adaptive,
    "avg_pool2d": _pool, "max_pool2d": _pool, "max_pool2d_with_indices": _pool,
    **dict.fromkeys(FREE_OPS, _fixed("free")),
}


