"""Expanded layers written as an ONNX model with ``onnx.helper``: the
network itself, for runtimes and devices mnsize does not run on.

The graph computes what mnsize.nn's PyTorch model computes at inference,
layer by layer: NCHW input ``input`` of shape [1, C, H, W] (float32), output
``logits``. Conventions:

- a convolution is one ``Conv`` with explicit pads: SAME padding as
  ``dilation * (K - 1) // 2`` zeros on every side (as mnsize.nn pads), a
  layer's own padding (before, after) as pads [before, before, after, after];
  a layer whose output size those pads do not give is refused;
- BatchNorm is folded (pass mnsize.expand.deployed's layers): a conv has a
  bias where the layer does, and no BatchNormalization node is written;
- activations are ONNX operators: ``Relu``, ``Clip(0, 6)``, ``HardSwish``
  (``x * HardSigmoid(x)`` before opset 14), ``HardSigmoid`` with PyTorch's
  alpha 1/6 and beta 1/2, ``Sigmoid``, ``x * Sigmoid(x)`` for SiLU, ``Gelu``
  (opset 20 and later only);
- squeeze-and-excite is GlobalAveragePool, 1x1 Conv (bias), activation, 1x1
  Conv (bias), gate, Mul; a residual is an Add of the block's input (the
  input of its first layer) after the layer marked ``residual``;
- global pooling is ``GlobalAveragePool``, max pooling ``MaxPool`` padded
  ``(K - 1) // 2`` on every side, fc ``Flatten`` then ``Gemm``; dropout
  computes nothing at inference and is left out.

Weights are random (numpy, from a seed): normal with standard deviation
1 / sqrt(fan-in), biases a hundredth of that scale. The file is for timing and
counting, not for predictions. Importing this module imports numpy only; onnx
is imported when a model is written.
"""

from __future__ import annotations

import numpy as np

from . import __version__
from .errors import MnsizeError
from .expand import Layer

#: the first opset whose Clip takes its bounds as inputs (what this writer emits)
MIN_OPSET = 11
#: the first opsets with these operators
HARDSWISH_OPSET = 14
GELU_OPSET = 20
#: protobuf's limit on one serialized message: an ONNX file without external data
MAX_MODEL_BYTES = 2**31 - 1
INSTALL_HINT = "writing an ONNX file needs the onnx package (pip install 'mnsize[onnx]')"


def import_onnx():
    try:
        import onnx
    except ImportError:
        raise MnsizeError(INSTALL_HINT) from None
    return onnx


def check_opset(opset: int, newest: int) -> None:
    if isinstance(opset, bool) or not isinstance(opset, int) or not MIN_OPSET <= opset <= newest:
        raise MnsizeError(f"opset must be a whole number from {MIN_OPSET} to {newest} "
                          f"(the newest this onnx package knows), got {opset!r}")


class _Graph:
    """The nodes and initializers being written, and the random weights."""

    def __init__(self, onnx, opset: int, seed: int) -> None:
        self.onnx, self.helper, self.opset = onnx, onnx.helper, opset
        self.rng = np.random.default_rng(seed)
        self.nodes: list = []
        self.initializers: list = []
        self.weight_bytes = 0
        self.names: set[str] = set()

    def unique(self, name: str) -> str:
        candidate, n = name, 1
        while candidate in self.names:
            n += 1
            candidate = f"{name}_{n}"
        self.names.add(candidate)
        return candidate

    def node(self, op: str, inputs: list[str], name: str, **attrs) -> str:
        output = self.unique(f"{name}/{op}")
        self.nodes.append(self.helper.make_node(op, inputs, [output], name=output, **attrs))
        return output

    def reserve(self, nbytes: int) -> None:
        """Count ``nbytes`` more of weights, refusing a model past one file's
        limit before its arrays are drawn."""
        self.weight_bytes += nbytes
        if self.weight_bytes > MAX_MODEL_BYTES:
            raise MnsizeError(f"the weights pass {MAX_MODEL_BYTES + 1:,} bytes, the most one ONNX file holds "
                              "without external data: give a smaller --alpha or --res")

    def constant(self, name: str, array: np.ndarray) -> str:
        name = self.unique(name)
        self.initializers.append(self.onnx.numpy_helper.from_array(array, name))
        return name

    def random(self, name: str, shape: tuple[int, ...], fan_in: int, scale: float = 1.0) -> str:
        self.reserve(4 * int(np.prod(shape)))
        std = np.float32(scale / np.sqrt(max(fan_in, 1)))
        return self.constant(name, self.rng.standard_normal(shape, dtype=np.float32) * std)

    def conv(self, x: str, name: str, c_in: int, c_out: int, kernel: int, *, stride: int = 1, groups: int = 1,
             dilation: int = 1, pads: tuple[int, int, int, int] = (0, 0, 0, 0), bias: bool = True) -> str:
        fan_in = c_in // groups * kernel * kernel
        inputs = [x, self.random(f"{name}.weight", (c_out, c_in // groups, kernel, kernel), fan_in)]
        if bias:
            inputs.append(self.random(f"{name}.bias", (c_out,), fan_in, 0.01))
        return self.node("Conv", inputs, name, kernel_shape=[kernel, kernel], strides=[stride, stride],
                         dilations=[dilation, dilation], group=groups, pads=list(pads))

    def activation(self, act: str, x: str, name: str) -> str:
        if act == "none":
            return x
        if act == "relu":
            return self.node("Relu", [x], name)
        if act == "relu6":
            bounds = [self.constant(f"{name}.min", np.array(0, np.float32)),
                      self.constant(f"{name}.max", np.array(6, np.float32))]
            return self.node("Clip", [x, *bounds], name)
        if act == "hardsigmoid":
            return self.node("HardSigmoid", [x], name, alpha=1 / 6, beta=0.5)
        if act == "hardswish":
            if self.opset >= HARDSWISH_OPSET:
                return self.node("HardSwish", [x], name)
            return self.node("Mul", [x, self.node("HardSigmoid", [x], name, alpha=1 / 6, beta=0.5)], name)
        if act == "sigmoid":
            return self.node("Sigmoid", [x], name)
        if act == "silu":
            return self.node("Mul", [x, self.node("Sigmoid", [x], name)], name)
        if act == "gelu":
            if self.opset < GELU_OPSET:
                raise MnsizeError(f"{name}: GELU is an ONNX operator from opset {GELU_OPSET}; "
                                  f"give --opset {GELU_OPSET} or later (got {self.opset})")
            return self.node("Gelu", [x], name)
        raise MnsizeError(f"{name}: no ONNX operator for activation {act!r}")


def _window_out(side: int, kernel: int, stride: int, dilation: int, before: int, after: int) -> int:
    """ONNX's output size of a convolution or pooling window (floor)."""
    return (side + before + after - dilation * (kernel - 1) - 1) // stride + 1


def _pads(layer: Layer, same: int) -> tuple[int, int, int, int]:
    """ONNX pads [top, left, bottom, right] for ``layer``, checked against its output size."""
    before, after = layer.padding if layer.padding is not None else (same, same)
    dilation = layer.dilation if layer.kind != "maxpool" else 1
    _, height, width = layer.in_shape
    size = tuple(_window_out(side, layer.kernel, layer.stride, dilation, before, after) for side in (height, width))
    if size != layer.out_shape[1:]:
        raise MnsizeError(f"layer {layer.index} ({layer.name}): a {layer.kernel}x{layer.kernel} window with "
                          f"stride {layer.stride} and pads ({before}, {after}) gives {size[0]}x{size[1]}, not "
                          f"{layer.out_shape[1]}x{layer.out_shape[2]}; its padding has no ONNX equivalent here")
    return (before, before, after, after)


def _layer(graph: _Graph, layer: Layer, x: str) -> str:
    """Write one layer reading tensor ``x``; the tensor it outputs."""
    name, (c_in, _, _), c_out = layer.name, layer.in_shape, layer.out_shape[0]
    if layer.kind in ("conv", "dw", "pw"):
        pads = _pads(layer, layer.dilation * (layer.kernel - 1) // 2)
        y = graph.conv(x, name, c_in, c_out, layer.kernel, stride=layer.stride, groups=layer.groups,
                       dilation=layer.dilation, pads=pads, bias=layer.bias)
        return graph.activation(layer.act, y, name)
    if layer.kind == "se":
        s = graph.node("GlobalAveragePool", [x], name)
        s = graph.activation(layer.se_act, graph.conv(s, f"{name}.fc1", c_in, layer.squeeze, 1), f"{name}.fc1")
        s = graph.activation(layer.gate, graph.conv(s, f"{name}.fc2", layer.squeeze, c_in, 1), f"{name}.fc2")
        return graph.node("Mul", [x, s], name)
    if layer.kind == "avgpool" and layer.kernel is None:
        return graph.node("GlobalAveragePool", [x], name)
    if layer.kind == "maxpool":
        pads = _pads(layer, (layer.kernel - 1) // 2)
        return graph.node("MaxPool", [x], name, kernel_shape=[layer.kernel] * 2, strides=[layer.stride] * 2,
                          pads=list(pads))
    if layer.kind == "dropout":
        return x
    raise MnsizeError(f"layer {layer.index} ({name}): no ONNX operator for a {layer.kind} layer here")


def _fc(graph: _Graph, layer: Layer, x: str, rank: int) -> str:
    c_in, h_in, w_in = layer.in_shape
    features = c_in * h_in * w_in
    if rank == 4:
        x = graph.node("Flatten", [x], layer.name, axis=1)
    inputs = [x, graph.random(f"{layer.name}.weight", (layer.out_shape[0], features), features)]
    if layer.bias:
        inputs.append(graph.random(f"{layer.name}.bias", (layer.out_shape[0],), features, 0.01))
    y = graph.node("Gemm", inputs, layer.name, transB=1)
    return graph.activation(layer.act, y, layer.name)


def export_onnx(layers: tuple[Layer, ...], name: str, *, opset: int = 17, seed: int = 0, doc: str = "") -> bytes:
    """The ONNX file (serialized, checked with onnx.checker) of ``layers``,
    which should be deployed ones (BatchNorm folded); see the module's
    conventions. Any layer the writer cannot express is one MnsizeError."""
    onnx = import_onnx()
    check_opset(opset, onnx.defs.onnx_opset_version())
    if not layers:
        raise MnsizeError(f"{name}: no layers to write")
    graph = _Graph(onnx, opset, seed)
    x, rank, starts = "input", 4, {}
    for layer in layers:
        starts.setdefault(layer.block, (x, layer.in_shape))
        if layer.kind == "fc":
            x, rank = _fc(graph, layer, x, rank), 2
        elif rank == 2 and layer.kind != "dropout":
            raise MnsizeError(f"layer {layer.index} ({layer.name}): a {layer.kind} layer after an fc layer "
                              "has no ONNX form here (its input is flat)")
        else:
            x = _layer(graph, layer, x)
        if layer.residual:
            block_input, shape = starts[layer.block]
            if shape != layer.out_shape or rank != 4:
                raise MnsizeError(f"layer {layer.index} ({layer.name}): its output {layer.out_shape} cannot be "
                                  f"added to its block's input {shape}")
            x = graph.node("Add", [block_input, x], f"{layer.block}.residual")
    # the output is a tensor of its own name, whatever the last node was
    graph.nodes.append(onnx.helper.make_node("Identity", [x], ["logits"], name="logits"))
    out = layers[-1].out_shape
    helper, f32 = onnx.helper, onnx.TensorProto.FLOAT
    model = helper.make_model(
        helper.make_graph(graph.nodes, name,
                          [helper.make_tensor_value_info("input", f32, [1, *layers[0].in_shape])],
                          [helper.make_tensor_value_info("logits", f32, [1, out[0]] if rank == 2 else [1, *out])],
                          graph.initializers),
        opset_imports=[helper.make_opsetid("", opset)], producer_name="mnsize",
        producer_version=__version__, doc_string=doc)
    # the oldest IR version that can hold the opset: what older runtimes read
    model.ir_version = helper.find_min_ir_version_for(model.opset_import)
    onnx.checker.check_model(model, full_check=True)
    return model.SerializeToString()
