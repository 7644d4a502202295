"""Constant folding for ONNX graphs: the value of a node all of whose inputs
are constants, computed with numpy.

This is what an export computes at run time but a counter can know
beforehand: a Keras export's pads, worked out from the input's Shape with
Gather, Sub, Div, Cast, Concat, Slice and Reshape; a Reshape's target; a
Clip's bounds. Each folder follows the ONNX operator's definition
(onnx.ai/onnx/operators) on the inputs it is given and returns the node's
outputs; a malformed computation raises, and the caller names the node.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable

import numpy as np

from .bounds import MAX_FOLDED_ELEMENTS

Folder = Callable[[list, dict, int], list]


def _bounded(*shapes) -> tuple[int, ...]:
    """The shape the operands broadcast to, refused past MAX_FOLDED_ELEMENTS before
    anything is allocated."""
    shape = tuple(np.broadcast_shapes(*shapes))
    if math.prod(shape) > MAX_FOLDED_ELEMENTS:
        raise ValueError(f"a constant of {math.prod(shape):,} elements")
    return shape


def _attr_or_input(inputs: list, attrs: dict, name: str, index: int) -> list[int] | None:
    if name in attrs:
        return [int(v) for v in attrs[name]]
    if len(inputs) > index and inputs[index] is not None:
        return [int(v) for v in np.asarray(inputs[index]).ravel()]
    return None


def target_shape(shape: tuple[int, ...], target: list[int], allowzero: int = 0) -> tuple[int, ...] | None:
    """Reshape's output: 0 copies the input's dim (unless ``allowzero``), one
    -1 takes what is left; None when the sizes do not agree."""
    out = [shape[i] if v == 0 and not allowzero and i < len(shape) else v for i, v in enumerate(target)]
    total = math.prod(shape)
    if out.count(-1) == 1:
        known = math.prod(v for v in out if v != -1)
        if known > 0 and total % known == 0:
            out[out.index(-1)] = total // known
    if any(v < 0 for v in out) or math.prod(out) != total:
        return None
    return tuple(out)


def _div(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    if np.issubdtype(a.dtype, np.integer):  # ONNX divides integers as C does: toward zero
        return (np.abs(a) // np.abs(b) * np.sign(a) * np.sign(b)).astype(a.dtype)
    return np.divide(a, b).astype(a.dtype)


def _arithmetic(fn: Callable, same_type: bool = True) -> Folder:
    # ONNX gives the operands one type, and the result that type: no promotion
    def fold(inputs: list, attrs: dict, opset: int) -> list:
        _bounded(*(v.shape for v in inputs))
        result = np.asarray(functools.reduce(fn, inputs))
        return [result.astype(inputs[0].dtype) if same_type else result]
    return fold


def _unary(fn: Callable) -> Folder:
    return lambda inputs, attrs, opset: [np.asarray(fn(inputs[0])).astype(inputs[0].dtype)]


def _cast(inputs: list, attrs: dict, opset: int) -> list:
    from onnx.helper import tensor_dtype_to_np_dtype

    return [inputs[0].astype(tensor_dtype_to_np_dtype(attrs["to"]))]


def _constant(inputs: list, attrs: dict, opset: int) -> list:
    from onnx import numpy_helper

    if attrs.get("value") is not None:
        return [numpy_helper.to_array(attrs["value"])]
    for key, dtype in (("value_float", np.float32), ("value_floats", np.float32), ("value_int", np.int64),
                       ("value_ints", np.int64)):
        if attrs.get(key) is not None:
            return [np.array(attrs[key], dtype=dtype)]
    raise ValueError("a Constant with no value mnsize reads")


def _constant_of_shape(inputs: list, attrs: dict, opset: int) -> list:
    from onnx import numpy_helper

    value = numpy_helper.to_array(attrs["value"]).ravel() if attrs.get("value") is not None else np.zeros(1, np.float32)
    shape = [int(v) for v in inputs[0].ravel()]
    return [np.full(_bounded(shape), value[0], dtype=value.dtype)]


def _gather(inputs: list, attrs: dict, opset: int) -> list:
    return [np.take(inputs[0], inputs[1].astype(np.int64), axis=attrs.get("axis", 0))]


def _unsqueeze(inputs: list, attrs: dict, opset: int) -> list:
    axes = _attr_or_input(inputs, attrs, "axes", 1) or []
    rank = inputs[0].ndim + len(axes)
    return [np.expand_dims(inputs[0], tuple(sorted(a + rank if a < 0 else a for a in axes)))]


def _squeeze(inputs: list, attrs: dict, opset: int) -> list:
    axes = _attr_or_input(inputs, attrs, "axes", 1)
    return [np.squeeze(inputs[0], axis=None if axes is None else tuple(axes))]


def _concat(inputs: list, attrs: dict, opset: int) -> list:
    return [np.concatenate([v for v in inputs if v is not None], axis=attrs["axis"])]


def _slice(inputs: list, attrs: dict, opset: int) -> list:
    data = inputs[0]
    if opset < 10:
        starts, ends, axes, steps = attrs["starts"], attrs["ends"], attrs.get("axes"), None
    else:
        starts, ends, axes, steps = (None if len(inputs) <= i or inputs[i] is None else
                                     [int(v) for v in inputs[i].ravel()] for i in range(1, 5))
    axes = list(range(len(starts))) if axes is None else axes
    steps = steps or [1] * len(starts)
    index = [slice(None)] * data.ndim
    for start, end, axis, step in zip(starts, ends, axes, steps):
        index[axis] = slice(start, end, step)  # Python clamps out-of-range bounds as ONNX does
    return [data[tuple(index)]]


def _reshape(inputs: list, attrs: dict, opset: int) -> list:
    target = _attr_or_input(inputs, attrs, "shape", 1)
    shape = target_shape(inputs[0].shape, target, attrs.get("allowzero", 0))
    if shape is None:
        raise ValueError("sizes do not agree")
    return [inputs[0].reshape(shape)]


def _range(inputs: list, attrs: dict, opset: int) -> list:
    start, limit, delta = (v.item() for v in inputs[:3])
    if delta == 0 or abs((limit - start) / delta) > MAX_FOLDED_ELEMENTS:
        raise ValueError("too long a range")
    return [np.arange(start, limit, delta, dtype=inputs[0].dtype)]


def _expand(inputs: list, attrs: dict, opset: int) -> list:
    shape = _bounded(inputs[0].shape, tuple(int(v) for v in inputs[1].ravel()))
    return [np.broadcast_to(inputs[0], shape).copy()]


def _where(inputs: list, attrs: dict, opset: int) -> list:
    _bounded(*(v.shape for v in inputs))
    return [np.where(*inputs[:3])]


def _clip(inputs: list, attrs: dict, opset: int) -> list:
    low, high = (attrs.get("min"), attrs.get("max")) if opset < 11 else (inputs + [None, None])[1:3]
    data = inputs[0]
    if low is not None:
        data = np.maximum(data, low)
    if high is not None:
        data = np.minimum(data, high)
    return [np.asarray(data).astype(inputs[0].dtype)]


def _flatten(inputs: list, attrs: dict, opset: int) -> list:
    axis = attrs.get("axis", 1)
    axis = axis + inputs[0].ndim if axis < 0 else axis
    return [inputs[0].reshape(math.prod(inputs[0].shape[:axis]), math.prod(inputs[0].shape[axis:]))]


def _reduce(fn: Callable) -> Folder:
    def fold(inputs: list, attrs: dict, opset: int) -> list:
        axes = _attr_or_input(inputs, attrs, "axes", 1)
        return [np.asarray(fn(inputs[0], axis=None if not axes else tuple(axes),
                              keepdims=bool(attrs.get("keepdims", 1)))).astype(inputs[0].dtype)]
    return fold


FOLDERS: dict[str, Folder] = {
    "Constant": _constant, "ConstantOfShape": _constant_of_shape, "Identity": lambda i, a, o: [i[0]],
    "Cast": _cast, "CastLike": lambda i, a, o: [i[0].astype(i[1].dtype)],
    "Shape": lambda i, a, o: [np.array(i[0].shape[a.get("start", 0):a.get("end")], dtype=np.int64)],
    "Size": lambda i, a, o: [np.array(i[0].size, dtype=np.int64)],
    "Gather": _gather, "Unsqueeze": _unsqueeze, "Squeeze": _squeeze, "Concat": _concat, "Slice": _slice,
    "Reshape": _reshape, "Flatten": _flatten,
    "Transpose": lambda i, a, o: [np.transpose(i[0], a.get("perm"))],
    "Add": _arithmetic(np.add), "Sub": _arithmetic(np.subtract), "Mul": _arithmetic(np.multiply),
    "Div": _arithmetic(_div), "Pow": _arithmetic(np.power), "Max": _arithmetic(np.maximum),
    "Min": _arithmetic(np.minimum), "Equal": _arithmetic(np.equal, False), "Less": _arithmetic(np.less, False),
    "Greater": _arithmetic(np.greater, False), "And": _arithmetic(np.logical_and, False),
    "Or": _arithmetic(np.logical_or, False), "Not": lambda i, a, o: [np.logical_not(i[0])],
    "Where": _where,
    "Neg": _unary(np.negative), "Abs": _unary(np.abs), "Sqrt": _unary(np.sqrt), "Reciprocal": _unary(np.reciprocal),
    "Floor": _unary(np.floor), "Ceil": _unary(np.ceil), "Relu": _unary(lambda x: np.maximum(x, 0)),
    "Clip": _clip,
    "Range": _range, "Expand": _expand,
    "ReduceProd": _reduce(np.prod), "ReduceSum": _reduce(np.sum), "ReduceMax": _reduce(np.max),
    "ReduceMin": _reduce(np.min),
}
