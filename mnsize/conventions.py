"""Counting conventions: how other tools count the same network, as data.

Every FLOP counter gives a different number for the same MobileNet because
each adds some of BatchNorm, activations, pooling, biases and element-wise
ops in its own way. A Convention states those choices as numbers per element,
per channel or per output; ``Convention.adjust`` applies them on top of the
paper's per-layer counts (``mnsize.costs`` calls it), so that under ``--convention X``
mnsize prints exactly the two numbers tool X prints for the model mnsize
builds. The rules were read from each tool's source and confirmed by running
it (tests/test_conventions.py runs every tool against every built-in spec).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from .costs import Counts, count
from .expand import Layer, elements


@dataclass(frozen=True)
class Convention:
    name: str
    tool: str                       # the tool and the version whose rules these are
    prints: str                     # what its mult-add figure is called ("" where it prints params only)
    flops_per_madd: int = 1         # 2 where the tool prints FLOPs
    bn_params_in_params: int = 0    # BatchNorm parameters per channel added to params: 0, 2 (numel) or 4 (Keras)
    bn_per_element: int = 0         # ops per BatchNorm input element
    bn_per_channel: int = 0         # ops per BatchNorm channel
    act_per_element: dict = field(default_factory=dict)  # ops per activation output element, by activation
    bias_per_element: int = 0       # ops per conv output element, for a conv with a bias
    fc_bias: int = 0                # ops per fc output, for an fc with a bias
    pool_in: int = 0                # ops per global-pooling input element
    pool_out: int = 0               # ops per global-pooling output element
    maxpool_in: int = 0             # ops per max-pooling input element
    mul_per_element: int = 0        # squeeze-and-excite's channel scaling, per element
    add_per_element: int = 0        # a residual add, per element
    rules: str = ""                 # the convention in words

    def adjust(self, counts: Counts, layer: Layer) -> Counts:
        """The paper's ``counts`` of ``layer`` as this convention counts them."""
        if self.name == "paper":
            return counts
        return Counts(madds=counts.madds + self.extra_ops(layer),
                      params=counts.params + self.bn_params_in_params * counts.bn_params // 2,
                      bn_params=counts.bn_params)

    def extra_ops(self, layer: Layer) -> int:
        """What this convention adds to the paper's mult-adds for one layer."""
        return sum(self.breakdown(layer).values())

    def breakdown(self, layer: Layer) -> dict[str, int]:
        """The ops this convention adds for one layer, by what they are for."""
        e_in, e_out, c_out = elements(layer.in_shape), elements(layer.out_shape), layer.out_shape[0]
        act = self.act_per_element.get(layer.act, 0)
        parts = dict.fromkeys(PARTS, 0)
        if layer.kind in ("conv", "dw", "pw"):
            parts["activations"] = act * e_out
            if layer.bn:
                parts["BatchNorm"] = self.bn_per_element * e_out + self.bn_per_channel * c_out
            if layer.bias:
                parts["biases"] = self.bias_per_element * e_out
            if layer.residual:
                parts["element-wise"] = self.add_per_element * e_out
        elif layer.kind == "fc":
            parts["activations"] = act * c_out
            parts["biases"] = self.fc_bias * c_out if layer.bias else 0
        elif layer.kind == "avgpool":
            parts["pooling"] = self.pool_in * e_in + self.pool_out * e_out
        elif layer.kind == "maxpool":
            parts["pooling"] = self.maxpool_in * e_in
        elif layer.kind == "se":
            # pooling to C x 1 x 1, a 1x1 conv to s with bias and its activation, a 1x1
            # conv back to C with bias and the gate, then the input scaled channel by channel
            channels, squeeze = layer.in_shape[0], layer.squeeze
            parts["pooling"] = self.pool_in * e_in + self.pool_out * channels
            parts["biases"] = self.bias_per_element * (squeeze + channels)
            parts["activations"] = (self.act_per_element.get(layer.se_act, 0) * squeeze
                                    + self.act_per_element.get(layer.gate, 0) * channels)
            parts["element-wise"] = self.mul_per_element * e_in
        return parts


#: what a convention's extra ops are for (explain's breakdown)
PARTS = ("BatchNorm", "activations", "pooling", "biases", "element-wise")


CONVENTIONS: dict[str, Convention] = {c.name: c for c in (
    Convention(
        "paper", "Howard et al. 2017", "mult-adds",
        rules="multiply-accumulates of conv and FC layers only; BatchNorm parameters reported apart"),
    Convention(
        "torch", "torch.utils.flop_counter.FlopCounterMode (PyTorch 2.13)", "FLOPs", flops_per_madd=2,
        bn_params_in_params=2,
        rules="2 FLOPs per multiply-accumulate of convolutions and matrix products, nothing else; "
              "params = numel(), BatchNorm's 2 per channel included"),
    Convention(
        "keras", "Keras model.summary()", "", bn_params_in_params=4,
        rules="mult-adds as the paper; params count 4 per BatchNorm channel (gamma, beta and the two "
              "running statistics)"),
    Convention(
        "ptflops", "ptflops 0.7.5 (pytorch backend, its default)", "MACs", bn_params_in_params=2,
        bn_per_element=2, act_per_element={"relu": 2, "relu6": 1, "silu": 1, "gelu": 2}, bias_per_element=1,
        fc_bias=1, pool_in=2, maxpool_in=2,
        rules="BatchNorm 2 per element; ReLU and GELU 2 per element (a module hook and a patched functional "
              "both count), ReLU6 1 (module hook only), SiLU 1 (patched F.silu only), sigmoid, hard-swish and "
              "hard-sigmoid 0; global and max pooling 2 per input element (module hook and patched "
              "functional); conv and fc biases 1 per output; element-wise * and + free"),
    Convention(
        "thop", "thop 0.1.1.post2209072238", "MACs", bn_params_in_params=2, bn_per_element=4, pool_in=1, pool_out=1,
        rules="BatchNorm 4 per element (2, doubled for the affine transform); activations free; global "
              "pooling H*W + 1 per output (one add per input element and a division); max pooling free; "
              "biases free"),
    Convention(
        "fvcore", "fvcore 0.1.5.post20221221", "flops", bn_params_in_params=2,
        bn_per_element=2, pool_in=1,
        rules="its 'flops' are multiply-accumulates; BatchNorm (inference) 2 per element; adaptive average "
              "pooling 1 per input element; "
              "activations, max pooling, biases, element-wise ops and dropout free"),
    Convention(
        "torchinfo", "torchinfo 1.8.0", "mult-adds", bn_params_in_params=2, bn_per_channel=2, bias_per_element=1,
        fc_bias=1,
        rules="each parameter of a layer times the layer's output positions: a conv's weights and bias per "
              "output position, BatchNorm's 2 per channel, an fc's weights and bias once"),
)}


@dataclass(frozen=True)
class Explanation:
    """One convention's totals for a network, and how they differ from the paper's."""

    convention: Convention
    madds: int
    params: int
    breakdown: dict          # part -> extra ops over the paper's mult-adds
    paper_madds: int
    paper_params: int
    bn_params: int

    @property
    def printed(self) -> int:
        """The figure the tool prints (FLOPs where it counts 2 per mult-add)."""
        return self.madds * self.convention.flops_per_madd


def explain(layers: tuple[Layer, ...]) -> list[Explanation]:
    """The network counted by every convention, each with its extra ops by part."""
    paper = count(layers)
    result = []
    for convention in CONVENTIONS.values():
        report = count(layers, convention)
        parts = dict.fromkeys(PARTS, 0)
        for layer in layers:
            for part, ops in convention.breakdown(layer).items():
                parts[part] += ops
        result.append(Explanation(convention, report.madds, report.params, parts, paper.madds, paper.params,
                                  paper.bn_params))
    return result
