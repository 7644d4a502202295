"""Small ONNX models written with onnx.helper, for the ONNX reader's tests.

    g = Graph((1, 3, 8, 8))
    y = g.conv(g.x, 3, 16, 3, stride=2, pads=[1, 1, 1, 1])
    path = g.save(tmp_path / "m.onnx", g.op("Relu", y))

Weights are zeros: the reader needs only their dims.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper


class Graph:
    """A graph being written: nodes in order, initializers, one image input."""

    def __init__(self, shape=(1, 3, 8, 8), opset: int = 20, name: str = "x") -> None:
        self.opset = opset
        self.nodes: list = []
        self.initializers: list = []
        self.x = name
        self.input = helper.make_tensor_value_info(name, TensorProto.FLOAT, list(shape))
        self.count = 0

    def fresh(self, prefix: str) -> str:
        self.count += 1
        return f"{prefix}_{self.count}"

    def const(self, value, dtype=np.float32, name: str | None = None) -> str:
        """An initializer holding ``value`` (an array, a list or a number)."""
        name = name or self.fresh("c")
        self.initializers.append(numpy_helper.from_array(np.asarray(value, dtype=dtype), name))
        return name

    def weight(self, *shape: int) -> str:
        return self.const(np.zeros(shape, np.float32))

    def op(self, op_type: str, *inputs: str, outputs: int = 1, name: str | None = None, **attrs):
        """A node: its output's name (a tuple of names if ``outputs`` > 1)."""
        name = name or self.fresh(op_type)
        outs = [f"{name}_out{i}" for i in range(outputs)]
        self.nodes.append(helper.make_node(op_type, list(inputs), outs, name=name, **attrs))
        return outs[0] if outputs == 1 else tuple(outs)

    def conv(self, x: str, c_in: int, c_out: int, k: int, stride: int = 1, groups: int = 1, bias: bool = False,
             name: str | None = None, **attrs) -> str:
        inputs = [x, self.weight(c_out, c_in // groups, k, k)] + ([self.weight(c_out)] if bias else [])
        attrs.setdefault("kernel_shape", [k, k])
        return self.op("Conv", *inputs, name=name, strides=[stride, stride], group=groups, **attrs)

    def model(self, *outputs: str) -> onnx.ModelProto:
        graph = helper.make_graph(self.nodes, "g", [self.input],
                                  [helper.make_tensor_value_info(o, TensorProto.FLOAT, None) for o in outputs],
                                  self.initializers)
        return helper.make_model(graph, opset_imports=[helper.make_opsetid("", self.opset)])

    def save(self, path: str | Path, *outputs: str) -> str:
        onnx.save(self.model(*outputs), str(path))
        return str(path)
