"""Cost formulas: one small pure function per layer kind, in a registry.

The convention is the paper's (Howard et al. 2017, section 3): mult-adds are
the multiply-accumulates of convolutions (standard, depthwise, pointwise) and
fully connected layers; BatchNorm, activations, pooling, softmax and bias
additions add none. ``params`` are the weights and biases of conv and FC
layers; BatchNorm's learned scale and shift (2 per channel) are kept apart as
``bn_params``: what ``sum(p.numel())`` of a PyTorch model adds on top.

A layer kind with no registered formula is an error, never a silent zero.
Another tool's way of counting is a Convention (mnsize.conventions), passed
in by the caller and applied to each layer's paper counts.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Protocol

from .errors import MnsizeError
from .expand import Layer


@dataclass(frozen=True)
class Counts:
    """Mult-adds, parameters and BatchNorm parameters: of one layer, of a
    network, or as another counter (PyTorch's) found them."""

    madds: int
    params: int
    bn_params: int

    def __add__(self, other: Counts) -> Counts:
        return Counts(self.madds + other.madds, self.params + other.params, self.bn_params + other.bn_params)


class Convention(Protocol):
    """How another tool counts (mnsize.conventions.Convention)."""

    def adjust(self, counts: Counts, layer: Layer) -> Counts: ...


CostFormula = Callable[[Layer], Counts]
COST_FORMULAS: dict[str, CostFormula] = {}


def formula(*kinds: str) -> Callable[[CostFormula], CostFormula]:
    def register(fn: CostFormula) -> CostFormula:
        for kind in kinds:
            COST_FORMULAS[kind] = fn
        return fn
    return register


@formula("conv", "dw", "pw")
def conv_cost(layer: Layer) -> Counts:
    """A (grouped) K x K convolution: each output element is a dot product over
    K*K*C_in/groups inputs, so mult-adds = K^2 * C_in/groups * C_out * H_out * W_out.
    Weights K^2 * C_in/groups * C_out, plus C_out biases when the layer has them;
    a BatchNorm after it has 2 * C_out parameters (bn_params).
    Depthwise: groups = C_in = C_out; pointwise: K = 1. Dilation spaces the
    same K*K taps further apart: with SAME padding it changes no count."""
    c_in = layer.in_shape[0]
    c_out, h_out, w_out = layer.out_shape
    weights = layer.kernel * layer.kernel * (c_in // layer.groups) * c_out
    return Counts(
        madds=weights * h_out * w_out,
        params=weights + (c_out if layer.bias else 0),
        bn_params=2 * c_out if layer.bn else 0,
    )


@formula("fc")
def fc_cost(layer: Layer) -> Counts:
    """Fully connected on the flattened input: C*H*W x C_out mult-adds and
    weights, plus C_out biases."""
    c_in, h_in, w_in = layer.in_shape
    weights = c_in * h_in * w_in * layer.out_shape[0]
    return Counts(madds=weights, params=weights + (layer.out_shape[0] if layer.bias else 0), bn_params=0)


@formula("se")
def se_cost(layer: Layer) -> Counts:
    """Squeeze-and-excite (Hu et al. 2018, as MobileNetV3 uses it): global
    pooling, a 1x1 conv C -> s with bias, a 1x1 conv s -> C with bias, then a
    channel-wise scale. Both convs run on the pooled 1x1 map, so per image
    mult-adds = C*s + s*C and weights 2*C*s plus s + C biases; the pooling, the
    two activations and the scaling multiply add none, by the paper's
    convention, whatever the activations are (EfficientNet's SiLU and
    sigmoid as V3's ReLU and hard-sigmoid)."""
    channels, squeeze = layer.in_shape[0], layer.squeeze
    return Counts(madds=2 * channels * squeeze, params=2 * channels * squeeze + squeeze + channels, bn_params=0)


@formula("avgpool", "maxpool", "dropout")
def free_cost(layer: Layer) -> Counts:
    """Global average pooling, windowed max pooling and dropout: no mult-adds
    and no parameters (the paper counts pooling's additions and comparisons
    as free, like BatchNorm and activations)."""
    return Counts(0, 0, 0)


def layer_cost(layer: Layer, convention: Convention | None = None) -> Counts:
    """The layer's counts by the paper's convention, or as ``convention``
    counts them."""
    try:
        rule = COST_FORMULAS[layer.kind]
    except KeyError:
        raise MnsizeError(f"layer {layer.index} ({layer.name}): no cost formula for kind {layer.kind!r}") from None
    counts = rule(layer)
    return counts if convention is None else convention.adjust(counts, layer)


# --------------------------------------------------------------------------- the report


@dataclass(frozen=True)
class Row:
    """One layer and its counts."""

    layer: Layer
    counts: Counts

    @property
    def madds(self) -> int:
        return self.counts.madds

    @property
    def params(self) -> int:
        return self.counts.params

    @property
    def bn_params(self) -> int:
        return self.counts.bn_params


@dataclass(frozen=True)
class Report:
    """Per-layer counts and their exact totals."""

    rows: tuple[Row, ...]
    totals: Counts

    @property
    def madds(self) -> int:
        return self.totals.madds

    @property
    def params(self) -> int:
        return self.totals.params

    @property
    def bn_params(self) -> int:
        return self.totals.bn_params


def count(layers: Iterable[Layer], convention: Convention | None = None) -> Report:
    """Every layer's counts and the network's totals, by the paper's
    convention or as ``convention`` counts."""
    rows = tuple(Row(layer, layer_cost(layer, convention)) for layer in layers)
    return Report(rows, Counts(sum(r.madds for r in rows), sum(r.params for r in rows),
                               sum(r.bn_params for r in rows)))
