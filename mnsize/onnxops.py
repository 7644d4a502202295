"""Shapes through an ONNX graph, and an mnsize.graph Op for every node on
data computed from the input (mnsize.onnxfile reads the file and starts the
walk).

Each computed tensor carries a label per axis (0 batch, 1 channels, 2
height, 3 width), moved by Transpose and kept through reshapes that only add
or drop unit axes: that is how a Keras export's NHWC tensors, transposed
around every Conv, still give channels-first shapes, and how a per-channel
constant is recognised along whichever axis holds the channels. A node on
constants only is folded (mnsize.onnxfold); an op type with no handler here
on computed data is refused, naming the node, never counted as zero.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import NamedTuple, Protocol

import numpy as np

from .errors import GraphError
from .onnxfold import target_shape

COUNTED = ("mnsize counts convolutions, fully connected layers, BatchNorm, pooling, element-wise arithmetic, "
           "MobileNets' activations and the ops that only move data")
NCHW = (0, 1, 2, 3)
NHWC = (0, 2, 3, 1)


class Dyn(NamedTuple):
    """A tensor computed from the input: its shape, batch included, and each
    axis's label (0 batch, 1 channels, 2 height, 3 width, 4 on: others)."""

    shape: tuple[int, ...]
    labels: tuple[int, ...]

    @property
    def image(self) -> tuple[int, ...]:
        """The shape per image, channels first."""
        return tuple(size for label, size in sorted(zip(self.labels, self.shape)) if label != 0)

    @property
    def channel_axis(self) -> int | None:
        return self.labels.index(1) if 1 in self.labels else None


class LayoutConflict(Exception):
    """An op that reads NCHW met a tensor labelled otherwise: the guess of
    the input's layout was wrong, or the model's layout cannot be followed."""


class Walk(Protocol):
    """What the handlers need of the walk through a graph (mnsize.onnxfile's)."""

    path: str
    opset: int
    dyn: dict[str, Dyn]                  # tensors computed from the input
    values: dict[str, np.ndarray]        # constants known
    padded: dict[str, tuple[str, tuple[int, int]]]  # a zero Pad's output: its input, and the zeros before and after

    def fail(self, where: str, message: str) -> GraphError: ...

    def value(self, name: str, where: str) -> np.ndarray: ...

    def static_shape(self, name: str, where: str) -> tuple[int, ...]: ...

    def ints(self, node, index: int, where: str, attribute: str | None = None, opset: int = 0) -> list[int] | None: ...

    def emit(self, node, position: int, kind: str, x: str, out: Dyn, **fields) -> None: ...


def attributes(node, walk: Walk, where: str) -> dict:
    """A node's attributes as Python values (tensors stay TensorProtos)."""
    found = {}
    for attr in node.attribute:
        if attr.ref_attr_name:
            raise walk.fail(where, f"attribute {attr.name!r} refers to a function's attribute")
        kind = attr.type
        found[attr.name] = (attr.f if kind == 1 else attr.i if kind == 2 else
                            attr.s.decode("utf-8", "replace") if kind == 3 else attr.t if kind == 4 else
                            list(attr.floats) if kind == 6 else list(attr.ints) if kind == 7 else None)
    return found


# --------------------------------------------------------------------------- shapes


def _relabel(x: Dyn, shape: tuple[int, ...]) -> tuple[int, ...]:
    """Labels after a reshape: kept on the axes that are not 1 when only unit
    axes were added or dropped (a pooled (N, C) to (N, 1, 1, C)); otherwise
    channels first, as ONNX's own ops read a tensor."""
    if shape == x.shape:
        return x.labels
    plain = tuple(range(len(shape)))
    if not shape or shape[0] != x.shape[0] or x.labels[0] != 0:
        return plain
    old = [(size, label) for size, label in zip(x.shape[1:], x.labels[1:]) if size != 1]
    new = [axis for axis in range(1, len(shape)) if shape[axis] != 1]
    if [size for size, _ in old] != [shape[axis] for axis in new]:
        return plain
    labels: list[int | None] = [0] + [None] * (len(shape) - 1)
    for axis, (_, label) in zip(new, old):
        labels[axis] = label
    unused = iter(label for label in range(1, 2 * len(shape) + 2) if label not in labels)
    return tuple(label if label is not None else next(unused) for label in labels)


def _axes(walk: Walk, where: str, axes, rank: int) -> list[int]:
    found = sorted(a + rank if a < 0 else a for a in axes)
    if any(not 0 <= a < rank for a in found) or len(set(found)) != len(found):
        raise walk.fail(where, f"axes {list(axes)} do not fit a tensor of rank {rank}")
    return found


def _pair(walk: Walk, where: str, values, name: str, least: int = 1) -> tuple[int, int]:
    if values is None or len(values) != 2 or any(v < least for v in values):
        raise walk.fail(where, f"{name} {values} is not two values of at least {least}")
    return int(values[0]), int(values[1])


def _window(walk: Walk, where: str, x: Dyn, attrs: dict, kernel, ceil: bool = False):
    """Output H and W of a convolution or pooling window (ONNX's formulas,
    ceil_mode as PyTorch rounds it: no window starts in the end padding)."""
    stride = _pair(walk, where, attrs.get("strides", [1, 1]), "strides")
    dilation = _pair(walk, where, attrs.get("dilations", [1, 1]), "dilations")
    pads = attrs.get("pads", [0, 0, 0, 0])
    auto = attrs.get("auto_pad", "NOTSET")
    if len(pads) != 4 or any(p < 0 for p in pads):
        raise walk.fail(where, f"pads {pads} are not four values of at least 0")
    sides = []
    for axis in (0, 1):
        size, span, step = x.shape[2 + axis], dilation[axis] * (kernel[axis] - 1) + 1, stride[axis]
        if auto in ("SAME_UPPER", "SAME_LOWER"):
            out = -(-size // step)
        elif auto == "VALID":
            out = (size - span) // step + 1
        elif auto == "NOTSET":
            padded = size + pads[axis] + pads[axis + 2]
            out = (padded - span + (step - 1 if ceil else 0)) // step + 1
            if ceil and (out - 1) * step >= size + pads[axis]:
                out -= 1
        else:
            raise walk.fail(where, f"auto_pad {auto!r} is not one ONNX defines")
        if out < 1:
            raise walk.fail(where, f"its window ({kernel[axis]}, dilation {dilation[axis]}) does not fit its "
                                   f"input's {size} (padded)")
        sides.append(out)
    return tuple(sides), stride, dilation


def _nchw(x: Dyn, where: str) -> None:
    if len(x.shape) == 4 and x.labels != NCHW:
        raise LayoutConflict(where)


# --------------------------------------------------------------------------- ops on computed data


def _conv(walk: Walk, node, position: int, where: str) -> None:
    x = walk.dyn[node.input[0]]
    if any(name in walk.dyn for name in node.input[1:]):
        raise walk.fail(where, "its weights are computed from the input")
    if len(x.shape) != 4:
        raise walk.fail(where, f"a {len(x.shape) - 2}-D convolution; mnsize counts 2-D ones")
    _nchw(x, where)
    attrs = attributes(node, walk, where)
    weight = walk.static_shape(node.input[1], where)
    groups = attrs.get("group", 1)
    kernel = _pair(walk, where, attrs.get("kernel_shape") or list(weight[2:]), "kernel_shape")
    if len(weight) != 4 or kernel != weight[2:] or groups < 1 or weight[1] * groups != x.shape[1] \
            or weight[0] % groups:
        raise walk.fail(where, f"weights {list(weight)} in {groups} group(s) do not fit its {x.shape[1]} input "
                               "channels")
    (height, width), stride, dilation = _window(walk, where, x, attrs, kernel)
    bias = math.prod(walk.static_shape(node.input[2], where)) if len(node.input) > 2 and node.input[2] else 0
    reads, padding = node.input[0], {}
    if reads in walk.padded and not any(attrs.get("pads", [])) and attrs.get("auto_pad", "NOTSET") in ("NOTSET",
                                                                                                       "VALID"):
        reads, pair = walk.padded[reads]  # the zeros before it are this convolution's padding
        padding = {"padding": pair, "inputs": (reads,)}
    walk.emit(node, position, "conv", reads, Dyn((x.shape[0], weight[0], height, width), NCHW),
              kernel=kernel, stride=stride, dilation=dilation, groups=groups, weights=math.prod(weight), bias=bias,
              **padding)


def _gemm(walk: Walk, node, position: int, where: str) -> None:
    attrs = attributes(node, walk, where) if node.op_type == "Gemm" else {}
    data, weight = node.input[0], node.input[1]
    if data not in walk.dyn or weight in walk.dyn or attrs.get("transA"):
        raise walk.fail(where, "multiplies by a computed matrix; mnsize counts a product with constant weights")
    x, shape = walk.dyn[data], walk.static_shape(weight, where)
    if len(x.shape) != 2 or len(shape) != 2:
        raise walk.fail(where, f"multiplies {list(x.shape)} by {list(shape)}; mnsize counts (batch, features) "
                               "by a matrix")
    features, outputs = shape[::-1] if attrs.get("transB") else shape
    if features != x.shape[1]:
        raise walk.fail(where, f"weights {list(shape)} do not fit its {x.shape[1]} features")
    bias = 0
    if len(node.input) > 2 and node.input[2]:
        if node.input[2] in walk.dyn:
            raise walk.fail(where, "its bias is computed from the input")
        bias = math.prod(walk.static_shape(node.input[2], where))
    walk.emit(node, position, "gemm", data, Dyn((x.shape[0], outputs), (0, 1)), weights=features * outputs,
              bias=bias)


def _batchnorm(walk: Walk, node, position: int, where: str) -> None:
    x = walk.dyn[node.input[0]]
    _nchw(x, where)
    walk.emit(node, position, "batchnorm", node.input[0], x)


def _activation(name: str) -> Callable:
    def handler(walk: Walk, node, position: int, where: str) -> None:
        walk.emit(node, position, "act", node.input[0], walk.dyn[node.input[0]], act=name)
    return handler


def _clip(walk: Walk, node, position: int, where: str) -> None:
    if walk.opset < 11:
        attrs = attributes(node, walk, where)
        low, high = attrs.get("min"), attrs.get("max")
    else:
        low, high = (float(np.asarray(walk.value(node.input[i], where)).ravel()[0])
                     if len(node.input) > i and node.input[i] else None for i in (1, 2))
    if low == 0 and high is not None and abs(high - 6) < 1e-6:
        act = "relu6"
    elif low == 0 and (high is None or high == math.inf):
        act = "relu"
    else:
        raise walk.fail(where, f"Clip to [{low}, {high}] is not counted (mnsize knows [0, 6] as ReLU6 and [0, inf) "
                               "as ReLU)")
    _activation(act)(walk, node, position, where)


def _hardsigmoid(walk: Walk, node, position: int, where: str) -> None:
    attrs = attributes(node, walk, where)
    alpha, beta = attrs.get("alpha", 0.2), attrs.get("beta", 0.5)
    # PyTorch's hard sigmoid is x/6 + 1/2; Keras 2's was 0.2x + 0.5
    if not (abs(beta - 0.5) < 1e-6 and (abs(alpha - 1 / 6) < 1e-6 or abs(alpha - 0.2) < 1e-6)):
        raise walk.fail(where, f"HardSigmoid with alpha {alpha:g}, beta {beta:g} is not counted (mnsize knows "
                               "alpha 1/6 or 0.2, beta 0.5)")
    _activation("hardsigmoid")(walk, node, position, where)


def _eltwise(walk: Walk, node, position: int, where: str) -> None:
    operator = node.op_type.lower()
    if len(node.input) != 2:
        raise walk.fail(where, f"{node.op_type} with {len(node.input)} inputs")
    a, b = node.input
    if a in walk.dyn and b in walk.dyn:
        first, second = walk.dyn[a], walk.dyn[b]
        try:
            shape = tuple(np.broadcast_shapes(first.shape, second.shape))
        except ValueError:
            raise walk.fail(where, f"operands {list(first.image)} and {list(second.image)} do not broadcast") from None
        labels = first.labels if first.shape == shape else second.labels if second.shape == shape else \
            tuple(range(len(shape)))
        walk.emit(node, position, "eltwise", a, Dyn(shape, labels), operator=operator)
        return
    if a not in walk.dyn and operator in ("sub", "div"):
        raise walk.fail(where, f"{'subtracts' if operator == 'sub' else 'divides'} computed data from a constant; "
                               "mnsize counts a constant on the right of Sub and Div")
    data, constant = (a, b) if a in walk.dyn else (b, a)
    x, shape = walk.dyn[data], walk.static_shape(constant, where)
    aligned = (1,) * (len(x.shape) - len(shape)) + shape
    if len(shape) > len(x.shape) or any(c not in (1, s) for c, s in zip(aligned, x.shape)):
        raise walk.fail(where, f"its constant {list(shape)} does not broadcast to {list(x.shape)} without growing it")
    spread = [axis for axis, size in enumerate(aligned) if size != 1]
    if not spread:
        value = float(np.asarray(walk.value(constant, where)).ravel()[0])
        walk.emit(node, position, "eltwise", data, x, operator=operator, constant="scalar", value=value)
    elif spread == [x.channel_axis]:
        walk.emit(node, position, "eltwise", data, x, operator=operator, constant="channel")
    else:
        raise walk.fail(where, f"its constant {list(shape)} is neither one number nor one per channel of "
                               f"{list(x.image)}")


def _pool(kind: str) -> Callable:
    def handler(walk: Walk, node, position: int, where: str) -> None:
        x = walk.dyn[node.input[0]]
        if len(x.shape) != 4:
            raise walk.fail(where, f"a {len(x.shape) - 2}-D pooling; mnsize counts 2-D ones")
        _nchw(x, where)
        attrs = attributes(node, walk, where)
        kernel = _pair(walk, where, attrs.get("kernel_shape"), "kernel_shape")
        (height, width), stride, _ = _window(walk, where, x, attrs, kernel, bool(attrs.get("ceil_mode", 0)))
        walk.emit(node, position, kind, node.input[0], Dyn((*x.shape[:2], height, width), NCHW), kernel=kernel,
                  stride=stride)
    return handler


def _global_pool(walk: Walk, node, position: int, where: str) -> None:
    x = walk.dyn[node.input[0]]
    if len(x.shape) != 4:
        raise walk.fail(where, f"pools a tensor of rank {len(x.shape)}; mnsize counts 2-D pooling")
    _nchw(x, where)
    walk.emit(node, position, "gap", node.input[0], Dyn((*x.shape[:2], 1, 1), NCHW))


def _reduce_mean(walk: Walk, node, position: int, where: str) -> None:
    x = walk.dyn[node.input[0]]
    attrs = attributes(node, walk, where)
    axes = walk.ints(node, 1, where, "axes", 18)
    axes = _axes(walk, where, range(len(x.shape)) if not axes else axes, len(x.shape))
    if sorted(x.labels[a] for a in axes) != [2, 3]:
        raise walk.fail(where, "a mean over axes that are not the height and width is not counted (mnsize counts "
                               "global average pooling)")
    keep = attrs.get("keepdims", 1)
    shape = tuple(1 if a in axes else s for a, s in enumerate(x.shape) if keep or a not in axes)
    labels = tuple(label for a, label in enumerate(x.labels) if keep or a not in axes)
    if not keep:  # what is left, (N, C), is labelled as a flattened tensor is
        labels = tuple(sorted(labels).index(label) for label in labels)
    walk.emit(node, position, "gap", node.input[0], Dyn(shape, labels))


def _same(walk: Walk, node, position: int, where: str) -> None:
    walk.emit(node, position, "free", node.input[0], walk.dyn[node.input[0]])


def _transpose(walk: Walk, node, position: int, where: str) -> None:
    x = walk.dyn[node.input[0]]
    perm = attributes(node, walk, where).get("perm") or list(range(len(x.shape)))[::-1]
    if sorted(perm) != list(range(len(x.shape))):
        raise walk.fail(where, f"perm {perm} is not a permutation of a tensor of rank {len(x.shape)}")
    walk.emit(node, position, "free", node.input[0], Dyn(tuple(x.shape[p] for p in perm),
                                                           tuple(x.labels[p] for p in perm)))


def _reshaped(walk: Walk, node, position: int, shape: tuple[int, ...]) -> None:
    x = walk.dyn[node.input[0]]
    walk.emit(node, position, "free", node.input[0], Dyn(shape, _relabel(x, shape)))


def _reshape(walk: Walk, node, position: int, where: str) -> None:
    x = walk.dyn[node.input[0]]
    target = walk.ints(node, 1, where, "shape", 5)
    if target is None:
        raise walk.fail(where, "has no target shape")
    shape = target_shape(x.shape, target, attributes(node, walk, where).get("allowzero", 0))
    if shape is None:
        raise walk.fail(where, f"cannot reshape {list(x.shape)} to {target}")
    _reshaped(walk, node, position, shape)


def _flatten(walk: Walk, node, position: int, where: str) -> None:
    x = walk.dyn[node.input[0]]
    axis = attributes(node, walk, where).get("axis", 1)
    axis = axis + len(x.shape) if axis < 0 else axis
    if not 0 <= axis <= len(x.shape):
        raise walk.fail(where, f"axis {axis} does not fit a tensor of rank {len(x.shape)}")
    _reshaped(walk, node, position, (math.prod(x.shape[:axis]), math.prod(x.shape[axis:])))


def _squeeze(walk: Walk, node, position: int, where: str) -> None:
    x = walk.dyn[node.input[0]]
    axes = walk.ints(node, 1, where, "axes", 13)
    if node.op_type == "Unsqueeze":
        rank = len(x.shape) + len(axes or ())
        shape = list(x.shape)
        for axis in _axes(walk, where, axes or (), rank):
            shape.insert(axis, 1)
    else:
        axes = [a for a, s in enumerate(x.shape) if s == 1] if axes is None else _axes(walk, where, axes, len(x.shape))
        if any(x.shape[a] != 1 for a in axes):
            raise walk.fail(where, f"squeezes axes {axes} of {list(x.shape)}, which are not all 1")
        shape = [s for a, s in enumerate(x.shape) if a not in axes]
    _reshaped(walk, node, position, tuple(shape))


def _pad(walk: Walk, node, position: int, where: str) -> None:
    x = walk.dyn[node.input[0]]
    pads = walk.ints(node, 1, where, "pads", 11)
    axes = walk.ints(node, 3, where)
    axes = list(range(len(x.shape))) if axes is None else _axes(walk, where, axes, len(x.shape))
    if pads is None or len(pads) != 2 * len(axes):
        raise walk.fail(where, f"pads {pads} do not fit a tensor of rank {len(x.shape)}")
    shape = list(x.shape)
    for i, axis in enumerate(axes):
        shape[axis] += pads[i] + pads[i + len(axes)]
    if any(s < 1 for s in shape) or shape[0] != x.shape[0]:
        raise walk.fail(where, f"pads {pads} give the shape {shape}")
    walk.emit(node, position, "free", node.input[0], Dyn(tuple(shape), x.labels))
    spatial = {axis: (pads[i], pads[i + len(axes)]) for i, axis in enumerate(axes) if pads[i] or pads[i + len(axes)]}
    mode = attributes(node, walk, where).get("mode", "constant")
    mode = mode.decode() if isinstance(mode, bytes) else mode
    zero = len(node.input) < 3 or not node.input[2] or not np.any(walk.value(node.input[2], where))
    if mode == "constant" and zero and x.labels == NCHW and set(spatial) <= {2, 3} \
            and spatial.get(2, (0, 0)) == spatial.get(3, (0, 0)):
        # zeros on H and W alike: a convolution reading this pads its input itself (Keras's ZeroPadding2D)
        walk.padded[node.output[0]] = (node.input[0], spatial.get(2, (0, 0)))


def _shape(walk: Walk, node, position: int, where: str) -> None:
    """The shape of a computed tensor is known: a constant, no Op."""
    shape = walk.dyn[node.input[0]].shape
    if node.op_type == "Size":
        walk.values[node.output[0]] = np.array(math.prod(shape), dtype=np.int64)
        return
    attrs = attributes(node, walk, where)
    walk.values[node.output[0]] = np.array(shape[attrs.get("start", 0):attrs.get("end")], dtype=np.int64)


HANDLERS: dict[str, Callable] = {
    "Conv": _conv, "Gemm": _gemm, "MatMul": _gemm, "BatchNormalization": _batchnorm,
    "Relu": _activation("relu"), "Clip": _clip, "HardSwish": _activation("hardswish"), "HardSigmoid": _hardsigmoid,
    "Sigmoid": _activation("sigmoid"), "Gelu": _activation("gelu"),
    "Add": _eltwise, "Sub": _eltwise, "Mul": _eltwise, "Div": _eltwise,
    "GlobalAveragePool": _global_pool, "ReduceMean": _reduce_mean, "AveragePool": _pool("avgpool"),
    "MaxPool": _pool("maxpool"),
    "Identity": _same, "Cast": _same, "CastLike": _same, "Dropout": _same, "Softmax": _same, "LogSoftmax": _same,
    "Transpose": _transpose, "Reshape": _reshape, "Flatten": _flatten, "Squeeze": _squeeze, "Unsqueeze": _squeeze,
    "Pad": _pad, "Shape": _shape, "Size": _shape,
}
