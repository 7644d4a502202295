"""Cost formulas: one small pure function per layer kind, in a registry.

The convention is the paper's (Howard et al. 2017, section 3): mult-adds are
the multiply-accumulates of convolutions (standard, depthwise, pointwise) and
fully connected layers; BatchNorm, activations, pooling, softmax and bias
additions add none. ``params`` are the weights and biases of conv and FC
layers; BatchNorm's learned scale and shift (2 per channel) are kept apart as
``bn_params``: what ``sum(p.numel())`` of a PyTorch model adds on top.

A layer kind with no registered formula is an error, never a silent zero.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

from .errors import MnsizeError
from .expand import Layer


@dataclass(frozen=True)
class Cost:
    madds: int
    params: int
    bn_params: int


CostFormula = Callable[[Layer], Cost]
COST_FORMULAS: dict[str, CostFormula] = {}


def formula(*kinds: str) -> Callable[[CostFormula], CostFormula]:
    def register(fn: CostFormula) -> CostFormula:
        for kind in kinds:
            COST_FORMULAS[kind] = fn
        return fn
    return register


@formula("conv", "dw", "pw")
def conv_cost(layer: Layer) -> Cost:
    """A (grouped) K x K convolution: each output element is a dot product over
    K*K*C_in/groups inputs, so mult-adds = K^2 * C_in/groups * C_out * H_out * W_out.
    Weights K^2 * C_in/groups * C_out, plus C_out biases when the layer has them;
    a BatchNorm after it has 2 * C_out parameters (bn_params).
    Depthwise: groups = C_in = C_out; pointwise: K = 1."""
    c_in = layer.in_shape[0]
    c_out, h_out, w_out = layer.out_shape
    weights = layer.kernel * layer.kernel * (c_in // layer.groups) * c_out
    return Cost(
        madds=weights * h_out * w_out,
        params=weights + (c_out if layer.bias else 0),
        bn_params=2 * c_out if layer.bn else 0,
    )


@formula("fc")
def fc_cost(layer: Layer) -> Cost:
    """Fully connected on the flattened input: C*H*W x C_out mult-adds and
    weights, plus C_out biases."""
    c_in, h_in, w_in = layer.in_shape
    weights = c_in * h_in * w_in * layer.out_shape[0]
    return Cost(madds=weights, params=weights + (layer.out_shape[0] if layer.bias else 0), bn_params=0)


@formula("se")
def se_cost(layer: Layer) -> Cost:
    """Squeeze-and-excite (Hu et al. 2018, as MobileNetV3 uses it): global
    pooling, a 1x1 conv C -> s with bias, a 1x1 conv s -> C with bias, then a
    channel-wise scale. Both convs run on the pooled 1x1 map, so per image
    mult-adds = C*s + s*C and weights 2*C*s plus s + C biases; the pooling and
    the scaling multiply add none, by the paper's convention."""
    channels, squeeze = layer.in_shape[0], layer.squeeze
    return Cost(madds=2 * channels * squeeze, params=2 * channels * squeeze + squeeze + channels, bn_params=0)


@formula("avgpool", "dropout")
def free_cost(layer: Layer) -> Cost:
    """Global average pooling and dropout: no mult-adds and no parameters (the
    paper counts pooling's additions as free, like BatchNorm and activations)."""
    return Cost(0, 0, 0)


def layer_cost(layer: Layer, convention=None) -> Cost:
    """The layer's cost by the paper's convention, or by ``convention`` (an
    ``mnsize.conventions.Convention``) when given."""
    try:
        rule = COST_FORMULAS[layer.kind]
    except KeyError:
        raise MnsizeError(f"layer {layer.index} ({layer.name}): no cost formula for kind {layer.kind!r}") from None
    cost = rule(layer)
    if convention is None or convention.name == "paper":
        return cost
    from .conventions import convention_cost

    return convention_cost(cost, layer, convention)


# --------------------------------------------------------------------------- the report


@dataclass(frozen=True)
class Row:
    layer: Layer
    madds: int
    params: int
    bn_params: int


@dataclass(frozen=True)
class Report:
    """Per-layer costs and their exact totals."""

    rows: tuple[Row, ...]
    madds: int
    params: int
    bn_params: int


def count(layers: Iterable[Layer], convention=None) -> Report:
    rows = []
    for layer in layers:
        cost = layer_cost(layer, convention)
        rows.append(Row(layer, cost.madds, cost.params, cost.bn_params))
    return Report(
        rows=tuple(rows),
        madds=sum(r.madds for r in rows),
        params=sum(r.params for r in rows),
        bn_params=sum(r.bn_params for r in rows),
    )
