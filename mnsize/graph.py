"""Real models' graphs, in a form that does not depend on where they came from.

A front-end reads a model a user ships (mnsize.onnxfile for an ``.onnx`` file,
mnsize.torchgraph for a PyTorch module traced with torch.export) and lists its
operations as ``Op`` records, in the order the graph runs them, with every
shape resolved and the batch dimension dropped. ``to_layers`` then recognises
the network's layers in them (a convolution with the BatchNorm and
activation that follow it, a squeeze-and-excite block, a residual add) and
returns the engine's ``Layer`` records, which mnsize.costs counts exactly as it
counts a spec's. Nothing here imports onnx or torch.
"""

from __future__ import annotations

from dataclasses import dataclass

#: what an Op can be; a front-end maps every node of its source to one of
#: these or refuses the node (a GraphError naming it), never a silent zero
OP_KINDS = (
    "conv",       # a convolution: kernel, stride, dilation, groups, weights, bias
    "gemm",       # a fully connected layer (Gemm, MatMul with a constant, linear): weights, bias
    "batchnorm",  # BatchNormalization with its own statistics (channels = in_shape[0])
    "act",        # an activation: act names it
    "eltwise",    # a binary element-wise op: operator, and constant when one operand is a constant
    "gap",        # global average pooling (GlobalAveragePool, ReduceMean over H and W, adaptive 1x1)
    "avgpool",    # windowed average pooling: kernel, stride
    "maxpool",    # windowed max pooling: kernel, stride
    "free",       # moves or relabels data and computes nothing counted: Reshape, Transpose, Pad, Softmax ...
)

#: the activations an "act" Op may name (the spec format's, but for none)
OP_ACTIVATIONS = ("relu", "relu6", "hardswish", "hardsigmoid", "sigmoid", "silu", "gelu")


@dataclass(frozen=True)
class Op:
    """One operation of a real model, as a front-end resolved it.

    ``inputs`` are the names of the values it reads that are computed from the
    model's input (constants and weights are left out), ``output`` the value it
    writes. Shapes are per image, channels first: (C, H, W) for feature maps,
    (F,) for vectors, whatever layout the source used (the ONNX front-end
    follows Transposes to find the channel axis).

    For an "eltwise" Op, ``operator`` is add, sub, mul or div and ``constant``
    says what the constant operand is: "" (both operands computed), "scalar"
    (one number: ``value``) or "channel" (one number per channel: an affine
    step of a BatchNorm written out, or a per-channel scale).
    """

    index: int                       # 1-based position in the source's node order
    name: str                        # the node's name or the module's path
    op_type: str                     # what the source calls it: "Conv", "aten.conv2d.default"
    kind: str                        # one of OP_KINDS
    inputs: tuple[str, ...]
    output: str
    in_shape: tuple[int, ...]        # of the first input
    out_shape: tuple[int, ...]
    kernel: tuple[int, int] = (1, 1)
    stride: tuple[int, int] = (1, 1)
    dilation: tuple[int, int] = (1, 1)
    groups: int = 1
    weights: int = 0                 # conv, gemm: weight elements
    bias: int = 0                    # conv, gemm: bias elements
    act: str = ""                    # act: one of OP_ACTIVATIONS
    operator: str = ""               # eltwise: add, sub, mul, div
    constant: str = ""               # eltwise: "", "scalar" or "channel"
    value: float | None = None       # eltwise with a scalar constant: the number

    @property
    def where(self) -> str:
        """How an error names it: op type, name and position."""
        return f"node {self.index} ({self.op_type} {self.name!r})"


@dataclass(frozen=True)
class Atom:
    """One weighted operation, a convolution or a fully connected layer, and
    its counts by the paper's convention (mult-adds, weights and biases, the
    BatchNorm after it): the unit ``mnsize verify --against`` compares, since
    it is what every source has whatever it calls its layers. ``layer`` names
    the layer (or module) it belongs to."""

    layer: str
    kind: str            # "conv" or "fc"
    madds: int
    params: int
    bn_params: int
    shape: tuple[int, ...]  # its output, per image, channels first
