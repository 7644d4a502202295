"""A real, trainable PyTorch model built from the engine's expanded layers.

    >>> from mnsize.nn import build_model
    >>> model = build_model("mobilenet_v1", alpha="0.5", resolution=160)
    >>> model(torch.randn(2, 3, 160, 160)).shape
    torch.Size([2, 1000])

Each expanded layer becomes one module, named after it: ``conv1``,
``dwsep1.dw`` (a container ``dwsep1`` holding ``dw`` and ``pw``), ``ir3.se``,
``avgpool1``, ``fc1``; an inverted residual block with a shortcut is a
``Residual`` container that adds its input to its output (dropping the branch
at random in training where the spec gives stochastic depth). A convolution
is a ``ConvBNAct``: Conv2d (groups = channels for a depthwise layer; padding
dilation x (K-1)/2, which is SAME padding for odd kernels, or a ZeroPad2d
before it where the spec gives its own padding), then BatchNorm2d and the
activation where the spec has them; a max pooling pads (K-1)/2 the
same way. Importing this module imports torch; nothing on the counting path
does.
"""

from __future__ import annotations

import torch
from torch import nn

from .errors import MnsizeError
from .expand import Layer, expand
from .models import load_spec

ACTIVATIONS = {"relu": nn.ReLU, "relu6": nn.ReLU6, "hardswish": nn.Hardswish, "hardsigmoid": nn.Hardsigmoid,
               "silu": nn.SiLU, "sigmoid": nn.Sigmoid, "gelu": nn.GELU}
#: the modules that take no ``inplace`` argument
NOT_INPLACE = ("sigmoid", "gelu")


def activation(name: str) -> nn.Module | None:
    if name == "none":
        return None
    try:
        module = ACTIVATIONS[name]
    except KeyError:
        raise MnsizeError(f"no PyTorch module for activation {name!r}") from None
    return module() if name in NOT_INPLACE else module(inplace=True)


class ConvBNAct(nn.Sequential):
    """Conv2d, then BatchNorm2d and an activation where the layer has them."""

    def __init__(self, layer: Layer) -> None:
        c_in, c_out = layer.in_shape[0], layer.out_shape[0]
        super().__init__()
        padding = layer.dilation * (layer.kernel - 1) // 2
        if layer.padding is not None:  # explicit zeros, then a convolution without padding
            before, after = layer.padding
            self.pad = nn.ZeroPad2d((before, after, before, after))
            padding = 0
        self.conv = nn.Conv2d(c_in, c_out, layer.kernel, layer.stride, padding=padding, dilation=layer.dilation,
                              groups=layer.groups, bias=layer.bias)
        if layer.bn:
            self.bn = nn.BatchNorm2d(c_out)
        act = activation(layer.act)
        if act is not None:
            self.act = act


class Classifier(nn.Sequential):
    """Flatten, then a Linear layer (and an activation where the spec has one)."""

    def __init__(self, layer: Layer) -> None:
        c_in, h_in, w_in = layer.in_shape
        super().__init__()
        self.flatten = nn.Flatten()
        self.linear = nn.Linear(c_in * h_in * w_in, layer.out_shape[0], bias=layer.bias)
        act = activation(layer.act)
        if act is not None:
            self.act = act


class SqueezeExcite(nn.Module):
    """Squeeze-and-excite as MobileNetV3 and EfficientNet use it: global
    average pooling, a 1x1 conv to the squeezed width (with bias) and the
    layer's ``se_act`` (ReLU in V3, SiLU in EfficientNet), a 1x1 conv back
    (with bias) and the ``gate`` (hard-sigmoid, sigmoid), then the input
    scaled channel by channel."""

    def __init__(self, layer: Layer) -> None:
        channels = layer.in_shape[0]
        super().__init__()
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc1 = nn.Conv2d(channels, layer.squeeze, 1)
        self.act = activation(layer.se_act) or nn.Identity()
        self.fc2 = nn.Conv2d(layer.squeeze, channels, 1)
        self.gate = activation(layer.gate) or nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.gate(self.fc2(self.act(self.fc1(self.pool(x)))))


class Residual(nn.Sequential):
    """A block whose input is added to its output (an inverted residual with
    stride 1 and equal widths).

    With ``drop_path`` p > 0, training drops the block's branch for each
    image with probability p and scales the kept ones by 1 / (1 - p)
    (stochastic depth, Huang et al. 2016, as EfficientNet trains); at
    inference the block is unchanged, and it holds no module and no
    parameter for it."""

    def __init__(self, drop_path: float = 0.0) -> None:
        super().__init__()
        self.drop_path = drop_path

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        branch = super().forward(x)
        if self.training and self.drop_path > 0:
            keep = 1 - self.drop_path
            branch = branch * (x.new_empty((x.shape[0],) + (1,) * (x.dim() - 1)).bernoulli_(keep) / keep)
        return x + branch


def layer_module(layer: Layer) -> nn.Module:
    if layer.kind in ("conv", "dw", "pw"):
        return ConvBNAct(layer)
    if layer.kind == "se":
        return SqueezeExcite(layer)
    if layer.kind == "avgpool":
        return nn.AdaptiveAvgPool2d(1)
    if layer.kind == "maxpool":
        return nn.MaxPool2d(layer.kernel, layer.stride, padding=(layer.kernel - 1) // 2)
    if layer.kind == "dropout":
        return nn.Dropout(layer.p, inplace=True)
    if layer.kind == "fc":
        return Classifier(layer)
    raise MnsizeError(f"layer {layer.index} ({layer.name}): no PyTorch module for kind {layer.kind!r}")


class MobileNet(nn.Sequential):
    """A network built from expanded layers; its children follow the layer names."""

    def __init__(self, layers: tuple[Layer, ...]) -> None:
        super().__init__()
        residual = {layer.block: layer.drop_path for layer in layers if layer.residual}
        for layer in layers:
            parent: nn.Module = self
            *path, leaf = layer.name.split(".")
            for part in path:
                if not hasattr(parent, part):
                    parent.add_module(part, Residual(residual[part]) if part in residual else nn.Sequential())
                parent = getattr(parent, part)
            parent.add_module(leaf, layer_module(layer))


def build_layers(layers: tuple[Layer, ...], device: str | torch.device | None = None) -> MobileNet:
    """The model for already expanded layers; ``device="meta"`` allocates nothing."""
    with torch.device(device or "cpu"):
        return MobileNet(layers)


def build_model(model: str = "mobilenet_v1", alpha="1.0", resolution: int | tuple[int, int] | None = None,
                classes: int | None = None, device: str | torch.device | None = None) -> MobileNet:
    """Build a built-in spec (by name) or a spec file (by path) at ``alpha``.

    The model accepts any input size (global pooling before the classifier);
    ``resolution`` only matters for specs whose fc sees a spatial input."""
    return build_layers(expand(load_spec(model), alpha, resolution, classes), device)
