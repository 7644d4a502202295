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

import math
from dataclasses import dataclass, field

from .costs import layer_cost
from .errors import GraphError
from .expand import Layer

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
    padding: tuple[int, int] | None = None  # conv: zeros before and after each side, where not its own SAME padding
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


# --------------------------------------------------------------------------- layers


def to_layers(ops: tuple[Op, ...] | list[Op], source: str) -> tuple[Layer, ...]:
    """The engine's layers in a real model's Ops, in order.

    A convolution (dw when its groups equal its input and output channels,
    pw when 1x1 in one group, else conv) takes the BatchNorm after it (an
    op, or written out as per-channel Sub, Mul, Add or Div, any order: one
    that scales is a BatchNorm, a lone Add or Sub is its bias) and then its
    activation; x·sigmoid(x) is silu, x·hard-sigmoid(x) hard-swish, and
    relu6(x + 3) / 6 a hard sigmoid. Global pooling, two 1x1 convolutions
    with biases and a sigmoid or hard-sigmoid gate multiplied into the pooled
    tensor are one squeeze-and-excite layer; an Add of two computed tensors
    of one shape marks the layer that made the later one residual. Constant
    arithmetic on the model's input (rescaling, normalisation) is free.
    Anything else on computed data that a layer cannot say is a GraphError
    naming the node, never a silent zero. ``source`` names the model in
    errors.
    """
    return _Recogniser(source).run(ops)


def layer_name(name: str) -> str:
    """A node's name made readable: the scope of an exporter's path
    (PyTorch's ``/features/features.0/features.0.0/Conv`` is
    ``features.0.0``, ``/ir1/se/Mul`` is ``ir1.se``), a plain name as it is."""
    parts = [part for part in name.split("/") if part]
    if len(parts) > 1:
        parts = parts[:-1]  # the last part names the operation: Conv, Gemm, Mul
    if not parts:
        return "layer"
    if len(parts) > 1 and all(inner.startswith(outer + ".") for outer, inner in zip(parts, parts[1:])):
        return parts[-1]
    return ".".join(parts)


def layer_atoms(layers: tuple[Layer, ...] | list[Layer]) -> tuple[Atom, ...]:
    """Every weighted operation of ``layers``, counted by mnsize.costs: one
    per conv, dw, pw and fc layer; two 1x1 convolutions with biases (C to s,
    s to C) per squeeze-and-excite layer; none for pooling and dropout."""
    atoms = []
    for layer in layers:
        if layer.kind in ("conv", "dw", "pw", "fc"):
            counts = layer_cost(layer)
            atoms.append(Atom(layer.name, "fc" if layer.kind == "fc" else "conv", counts.madds, counts.params,
                              counts.bn_params, layer.out_shape))
        elif layer.kind == "se":
            channels, squeeze = layer.in_shape[0], layer.squeeze
            atoms.append(Atom(layer.name, "conv", channels * squeeze, channels * squeeze + squeeze, 0, (squeeze, 1, 1)))
            atoms.append(Atom(layer.name, "conv", squeeze * channels, squeeze * channels + channels, 0,
                              (channels, 1, 1)))
    return tuple(atoms)


def _close(value: float | None, target: float) -> bool:
    return value is not None and abs(value - target) <= 1e-6 * max(1.0, abs(target))


@dataclass
class _Found:
    """A layer being recognised: its fields so far and what may still attach."""

    kind: str
    source: Op
    in_shape: tuple[int, ...]
    out_shape: tuple[int, ...]
    reads: str                      # the value it reads
    tail: str                       # the value its output is now (after BatchNorm, bias, activation)
    kernel: int | None = None
    stride: int | None = None
    groups: int = 1
    dilation: int = 1
    padding: tuple[int, int] | None = None
    bias: bool = False
    bn: bool = False
    act: str = "none"
    affine: list[str] = field(default_factory=list)  # per-channel operators after it
    open: bool = True               # a BatchNorm, a bias or an activation may still follow
    squeeze: int = 0
    se_act: str = "relu"
    gate: str = "hardsigmoid"
    residual: bool = False
    dropped: bool = False


class _Recogniser:
    def __init__(self, source: str) -> None:
        self.source = source
        self.found: list[_Found] = []
        self.alias: dict[str, str] = {}      # a value that only moves data -> the value it moves
        self.owner: dict[str, _Found] = {}   # a value -> the layer whose output it is
        self.pending: dict[str, tuple[str, str, Op]] = {}  # sigmoid(x): (activation, x, op), until its use is known
        self.hard: dict[str, tuple[str, str, Op]] = {}     # x + 3, then relu6 of it: (step, x, op)
        self.inputs: set[str] = set()
        self.made: dict[str, int] = {}       # value -> position of the op that made it
        self.shapes: dict[str, tuple[int, ...]] = {}
        self.producer: dict[str, Op] = {}

    def fail(self, op: Op, message: str) -> GraphError:
        return GraphError(f"{self.source}: {op.where}: {message}")

    def run(self, ops) -> tuple[Layer, ...]:
        handlers = {"conv": self.conv, "gemm": self.gemm, "batchnorm": self.batchnorm, "act": self.act,
                    "eltwise": self.eltwise, "gap": self.pool, "avgpool": self.pool, "maxpool": self.pool,
                    "free": self.free}
        for position, op in enumerate(ops):
            for name in op.inputs:
                if name not in self.made:
                    self.inputs.add(name)
                    self.made[name] = -1
            if op.inputs:
                self.shapes.setdefault(op.inputs[0], op.in_shape)
            if op.kind not in handlers:
                raise self.fail(op, f"kind {op.kind!r} is not one of {', '.join(OP_KINDS)}")
            handlers[op.kind](op)
            self.made[op.output] = position
            self.shapes[op.output] = op.out_shape
            self.producer[op.output] = op
        for name in list(self.pending):
            self.commit(name)
        if self.hard:
            raise self.fail(next(iter(self.hard.values()))[2], "starts a hard sigmoid (x + 3, ReLU6, / 6) that "
                                                               "does not finish")
        return self.layers()

    # -- values
    def resolve(self, name: str) -> str:
        while name in self.alias:
            name = self.alias[name]
        return name

    def layer_at(self, name: str) -> _Found | None:
        found = self.owner.get(name)
        return found if found is not None and found.tail == name else None

    def move(self, found: _Found, name: str) -> None:
        found.tail = name
        self.owner[name] = found

    def use(self, name: str) -> str:
        """The value an op reads, an activation waiting on it applied."""
        name = self.resolve(name)
        if name in self.pending:
            self.commit(name)
        return name

    def commit(self, name: str) -> None:
        act, x, op = self.pending.pop(name)
        found = self.layer_at(x)
        if found is None or not found.open:
            raise self.fail(op, f"an activation ({act}) after something that is not a convolution or fully "
                                "connected layer")
        found.act, found.open = act, False
        self.move(found, name)

    def add(self, op: Op, kind: str, reads: str, in_shape: tuple[int, ...], out_shape: tuple[int, ...],
            **fields) -> _Found:
        found = _Found(kind, op, in_shape, out_shape, reads, op.output, **fields)
        self.found.append(found)
        self.owner[op.output] = found
        return found

    # -- ops
    def free(self, op: Op) -> None:
        if len(op.inputs) != 1:
            raise self.fail(op, f"moves data from {len(op.inputs)} computed tensors")
        self.alias[op.output] = self.resolve(op.inputs[0])

    def conv(self, op: Op) -> None:
        x = self.use(op.inputs[0])
        for key in ("kernel", "stride", "dilation"):
            pair = getattr(op, key)
            if pair[0] != pair[1]:
                raise self.fail(op, f"{key} {pair[0]}x{pair[1]}: a layer has one {key} for both sides")
        kernel, groups = op.kernel[0], op.groups
        c_in, c_out = op.in_shape[0], op.out_shape[0]
        expected = kernel * kernel * (c_in // groups) * c_out if groups >= 1 and c_in % groups == 0 else -1
        if groups < 1 or op.weights != expected or c_out % groups:
            raise self.fail(op, f"{op.weights:,} weights, which a {kernel}x{kernel} convolution from {c_in} to "
                                f"{c_out} channels in {groups} groups does not have")
        if op.bias not in (0, c_out):
            raise self.fail(op, f"{op.bias:,} biases for {c_out} output channels")
        kind = "dw" if groups == c_in == c_out > 1 else "pw" if kernel == 1 and groups == 1 else "conv"
        self.add(op, kind, x, op.in_shape, op.out_shape, kernel=kernel, stride=op.stride[0], groups=groups,
                 dilation=op.dilation[0], bias=bool(op.bias), padding=op.padding)

    def gemm(self, op: Op) -> None:
        x = self.use(op.inputs[0])
        features, outputs = op.in_shape[-1], op.out_shape[-1]
        if len(op.in_shape) != 1 or op.weights != features * outputs or op.bias not in (0, outputs):
            raise self.fail(op, f"{op.weights:,} weights and {op.bias:,} biases, which a fully connected layer "
                                f"from {list(op.in_shape)} to {outputs} does not have")
        self.add(op, "fc", x, self.flattened(op.inputs[0], features), (outputs, 1, 1), bias=bool(op.bias))

    def flattened(self, name: str, features: int) -> tuple[int, ...]:
        """What a fully connected layer's input was before it was flattened."""
        while True:
            op = self.producer.get(name)
            if op is not None and len(op.out_shape) == 3 and math.prod(op.out_shape) == features:
                return op.out_shape
            if op is None or op.kind != "free":
                return (features, 1, 1)
            if len(op.in_shape) == 3 and math.prod(op.in_shape) == features:
                return op.in_shape
            name = op.inputs[0]

    def batchnorm(self, op: Op) -> None:
        found = self.layer_at(self.use(op.inputs[0]))
        if found is None or not found.open or found.kind == "fc" or found.bn or found.affine:
            raise self.fail(op, "a BatchNorm that does not directly follow a convolution")
        found.bn = True
        self.move(found, op.output)

    def act(self, op: Op) -> None:
        x = self.resolve(op.inputs[0])
        if op.act == "relu6" and self.hard.get(x, ("",))[0] == "add3":
            self.hard[op.output] = ("relu6", self.hard.pop(x)[1], op)
            return
        x = self.use(x)
        found = self.layer_at(x)
        if found is None or not found.open:
            raise self.fail(op, f"an activation ({op.act}) after something that is not a convolution or fully "
                                "connected layer")
        if op.act in ("sigmoid", "hardsigmoid"):  # x·sigmoid(x) is silu: wait for the product
            self.pending[op.output] = (op.act, x, op)
            return
        found.act, found.open = op.act, False
        self.move(found, op.output)

    def eltwise(self, op: Op) -> None:
        if op.constant:
            x = self.resolve(op.inputs[0])
            if x in self.inputs:  # rescaling or normalising the input: free
                self.alias[op.output] = x
            elif op.constant == "scalar":
                self.scalar(op, x)
            else:
                self.per_channel(op, self.use(x))
            return
        if len(op.inputs) != 2:
            raise self.fail(op, f"an element-wise {op.operator} of {len(op.inputs)} computed tensors")
        a, b = (self.resolve(name) for name in op.inputs)
        if op.operator == "mul":
            self.product(op, a, b)
        elif op.operator == "add":
            self.residual(op, a, b)
        else:
            raise self.fail(op, f"an element-wise {op.operator} of two computed tensors is not counted (mnsize "
                                "counts the residual add)")

    def scalar(self, op: Op, x: str) -> None:
        """Steps of a hard sigmoid written out: relu6(x + 3) * 1/6 (or / 6)."""
        if op.operator == "add" and _close(op.value, 3):
            x = self.use(x)
            found = self.layer_at(x)
            if found is not None and found.open:
                self.hard[op.output] = ("add3", x, op)
                return
        elif self.hard.get(x, ("",))[0] == "relu6" and (
                (op.operator == "mul" and _close(op.value, 1 / 6)) or (op.operator == "div" and _close(op.value, 6))):
            self.pending[op.output] = ("hardsigmoid", self.hard.pop(x)[1], op)
            return
        raise self.fail(op, f"an element-wise {op.operator} by {op.value:g} on computed data that is part of no "
                            "layer mnsize recognises")

    def per_channel(self, op: Op, x: str) -> None:
        found = self.layer_at(x)
        if found is None or not found.open or found.kind == "se":
            raise self.fail(op, f"a per-channel {op.operator} that does not follow a convolution or fully connected "
                                "layer (a BatchNorm or bias a layer cannot say)")
        found.affine.append(op.operator)
        self.move(found, op.output)

    def product(self, op: Op, a: str, b: str) -> None:
        for x, gate in ((a, b), (b, a)):
            if gate in self.pending and self.pending[gate][1] == x:
                act = self.pending.pop(gate)[0]
                found = self.layer_at(x)
                found.act, found.open = ("silu" if act == "sigmoid" else "hardswish"), False
                self.move(found, op.output)
                return
        for x, gate in ((a, b), (b, a)):
            if gate in self.pending and self.excite(op, x, gate):
                return
        raise self.fail(op, "a product of two computed tensors that is none of x·sigmoid(x), x·hard-sigmoid(x) "
                            "and a squeeze-and-excite gate")

    def excite(self, op: Op, x: str, gate: str) -> bool:
        """Squeeze-and-excite: x times gate(conv(act(conv(pool(x)))))."""
        act, excited, _ = self.pending[gate]
        second = self.layer_at(excited)
        first = self.layer_at(second.reads) if second is not None else None
        pool = self.layer_at(first.reads) if first is not None else None
        if pool is None or pool.kind != "avgpool" or pool.kernel is not None or pool.reads != self.use(x):
            return False
        channels = pool.in_shape[0]
        if any(found.kind not in ("pw", "fc") or found.bn or found.affine not in ([], ["add"])
               or found.bias == bool(found.affine) for found in (first, second)):
            return False
        if first.in_shape[0] != channels or second.out_shape[0] != channels:
            return False
        del self.pending[gate]
        first.dropped = second.dropped = True
        pool.kind, pool.source, pool.out_shape, pool.open = "se", op, pool.in_shape, False
        pool.squeeze, pool.se_act, pool.act, pool.gate, pool.bias = first.out_shape[0], first.act, first.act, act, True
        self.move(pool, op.output)
        return True

    def residual(self, op: Op, a: str, b: str) -> None:
        a, b = self.use(a), self.use(b)
        shapes = [self.shapes.get(name) for name in op.inputs]
        if shapes[0] != shapes[1]:
            raise self.fail(op, f"adds tensors of shapes {shapes[0]} and {shapes[1]}; mnsize counts a residual add "
                                "of two tensors of one shape")
        later = max((a, b), key=lambda name: self.made.get(name, -1))
        found = self.layer_at(later)
        if found is None or found.residual:
            raise self.fail(op, "a residual add whose later operand is not the output of a layer")
        found.residual, found.open = True, False

    def pool(self, op: Op) -> None:
        x = self.use(op.inputs[0])
        if len(op.in_shape) != 3:
            raise self.fail(op, f"pools a tensor of shape {list(op.in_shape)}")
        if op.kind == "gap":
            self.add(op, "avgpool", x, op.in_shape, (op.in_shape[0], 1, 1), open=False)
            return
        for key in ("kernel", "stride"):
            pair = getattr(op, key)
            if pair[0] != pair[1]:
                raise self.fail(op, f"{key} {pair[0]}x{pair[1]}: a layer has one {key} for both sides")
        self.add(op, op.kind, x, op.in_shape, op.out_shape, kernel=op.kernel[0], stride=op.stride[0], open=False)

    # -- the layers
    def layers(self) -> tuple[Layer, ...]:
        layers: list[Layer] = []
        names: set[str] = set()
        for found in self.found:
            if found.dropped:
                continue
            if any(operator in ("mul", "div") for operator in found.affine):
                if found.bn or found.kind == "fc":
                    raise self.fail(found.source, "a per-channel scale after it that is not a BatchNorm a layer "
                                                  "can say")
                found.bn = True
            elif found.affine:
                if found.bias or len(found.affine) > 1:
                    raise self.fail(found.source, "more than one per-channel bias after it")
                found.bias = True
            name = base = layer_name(found.source.name)
            suffix = 1
            while name in names:  # two layers from one scope: base, base_2, base_3 ...
                suffix += 1
                name = f"{base}_{suffix}"
            names.add(name)
            layers.append(Layer(
                index=len(layers) + 1, name=name, block=name, kind=found.kind, in_shape=found.in_shape,
                out_shape=found.out_shape, kernel=found.kernel, stride=found.stride, groups=found.groups,
                bias=found.bias, bn=found.bn, act=found.act, position=found.source.index, squeeze=found.squeeze,
                residual=found.residual, dilation=found.dilation, se_act=found.se_act, gate=found.gate,
                padding=found.padding))
        return tuple(layers)
