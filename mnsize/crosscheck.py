"""Cross-check the symbolic counts against a real PyTorch model, layer by layer.

The torch side is independent of the cost formulas: it builds the network as
nn.Modules, takes mult-adds from a forward pass under
``torch.utils.flop_counter.FlopCounterMode`` (FLOPs / 2, attributed to the
module that ran them), parameters from ``numel()`` of each module's weights
and biases (BatchNorm apart), and output shapes from forward hooks. By default
the forward pass runs on the meta device: shapes and FLOPs without memory.

On the meta device the element-wise modules (BatchNorm, ReLU6, Hardswish,
Hardsigmoid, SiLU, Sigmoid, GELU, Dropout) are passed through (``fast_meta``): their meta kernels
are Python and cost 1 to 2.5 ms a call, most of a meta forward, while they
change no shape and FlopCounterMode counts no FLOPs for them (its registry
holds matrix products and convolutions only). BatchNorm's parameters are
still counted from the module. tests/test_verify.py checks that the elision
changes no per-layer figure; ``--device cpu`` runs everything for real.
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction

from .bounds import MAX_CPU_BYTES, MAX_TORCH_ELEMENTS
from .costs import Counts, Report, Row, count, layer_cost
from .errors import MnsizeError
from .expand import Config, Layer, elements, expand, to_alpha
from .spec import Spec
from .torchload import import_torch

DEVICES = ("meta", "cpu")


def forward_bytes(layers: tuple[Layer, ...], batch: int = 1, folded: bool = False, kept_by_threads: int = 0) -> int:
    """An upper bound of the memory a CPU forward pass of ``layers`` adds, in
    fp32 (tests/test_limits.py measures it).

    The weights, twice (initialised, then copied by a fold or a reorder into
    the kernel's layout), and BatchNorm's scale, shift and running statistics;
    then the most that is live at any one layer: its input and output (twice
    when an unfolded BatchNorm writes a new tensor), the input of its residual
    block (kept for the add), and the convolution's working memory: the
    unfolded input patches (K x K x C_in per output position) of a dense K x K
    convolution, a copy of the input and output reordered into a blocked
    layout for the others; a quarter more for the C allocator's rounding and
    fragments. ``kept_by_threads``: in a process that keeps freed memory
    (mnsize.bench.keep_freed_memory), the threads that run the pass; each
    keeps a heap of its own, and the process was measured holding up to
    (1 + threads) x that working set."""
    params = sum(_weights(lay) for lay in layers)
    block_input: dict[str, int] = {}
    for lay in layers:
        block_input.setdefault(lay.block, elements(lay.in_shape))
    residual = {lay.block for lay in layers if lay.residual}
    live = 0
    for lay in layers:
        inputs, outputs = elements(lay.in_shape), elements(lay.out_shape)
        work = 0
        if lay.kind in ("conv", "dw", "pw"):
            dense = lay.groups == 1 and lay.kernel > 1
            work = lay.in_shape[0] * lay.kernel ** 2 * lay.out_shape[1] * lay.out_shape[2] if dense else \
                inputs + outputs
        held = block_input[lay.block] if lay.block in residual else 0
        live = max(live, inputs + (2 if lay.bn and not folded else 1) * outputs + held + work)
    return 4 * (2 * params + batch * live * (1 + kept_by_threads) * 5 // 4)


def _weights(layer: Layer) -> int:
    """Weights, biases and BatchNorm's four numbers per channel."""
    cost = layer_cost(layer)
    return cost.params + 2 * cost.bn_params


@dataclass(frozen=True)
class TorchLayer:
    name: str
    counts: Counts
    out_shape: tuple[int, ...]


@dataclass(frozen=True)
class LayerCheck:
    row: Row
    torch: TorchLayer

    @property
    def symbolic(self) -> Counts:
        return self.row.counts

    @property
    def differences(self) -> tuple[str, ...]:
        """The quantities that disagree: madds, params, bn_params, shape."""
        diffs = [key for key in ("madds", "params", "bn_params")
                 if getattr(self.symbolic, key) != getattr(self.torch.counts, key)]
        if self.torch.out_shape != self.row.layer.out_shape:
            diffs.append("shape")
        return tuple(diffs)

    @property
    def match(self) -> bool:
        return not self.differences


@dataclass(frozen=True)
class Verification:
    config: Config
    report: Report
    torch: Counts
    layers: tuple[LayerCheck, ...]

    @property
    def symbolic(self) -> Counts:
        return self.report.totals

    @property
    def mismatches(self) -> tuple[LayerCheck, ...]:
        return tuple(check for check in self.layers if not check.match)

    @property
    def match(self) -> bool:
        return not self.mismatches and self.symbolic == self.torch


def count_torch(model, layers: tuple[Layer, ...], input_shape: tuple[int, int, int], device: str,
                fast_meta: bool = True, params: dict[str, tuple[int, int]] | None = None):
    """Per-layer and total (madds, params, bn_params) of a built model, and each
    layer's output shape, measured by torch alone."""
    torch = import_torch()
    from torch.utils.flop_counter import FlopCounterMode

    modules = dict(model.named_modules())
    shapes: dict[str, tuple[int, ...]] = {}
    hooks = [modules[layer.name].register_forward_hook(_shape_hook(shapes, layer.name)) for layer in layers]
    elementwise = (torch.nn.modules.batchnorm._BatchNorm, torch.nn.ReLU6, torch.nn.Hardswish, torch.nn.Hardsigmoid,
                   torch.nn.SiLU, torch.nn.Sigmoid, torch.nn.GELU, torch.nn.Dropout)
    passed_through = [m for m in modules.values() if isinstance(m, elementwise)]
    elide = fast_meta and device == "meta"
    counter = FlopCounterMode(display=False, depth=None)
    try:
        if elide:
            for module in passed_through:
                module.forward = _passthrough
        with torch.inference_mode(), counter:
            # batch 1: mult-adds per image
            model(torch.zeros((1, *input_shape), device=device))
    finally:
        for hook in hooks:
            hook.remove()
        if elide:
            for module in passed_through:
                del module.forward
    flops = counter.get_flop_counts()
    root = type(model).__name__
    params = params or torch_params(model, layers)
    per_layer = tuple(
        TorchLayer(layer.name, Counts(sum(flops.get(f"{root}.{layer.name}", {}).values()) // 2,
                                      *params[layer.name]), shapes.get(layer.name, ()))
        for layer in layers)
    return per_layer, Counts(counter.get_total_flops() // 2, *params[""])


def torch_params(model, layers: tuple[Layer, ...]) -> dict[str, tuple[int, int]]:
    """(weights and biases, BatchNorm parameters) by numel(), for each layer's
    module and for the whole model (key "")."""
    torch = import_torch()
    modules = dict(model.named_modules())

    def split(module) -> tuple[int, int]:
        weights = bn = 0
        for sub in module.modules():
            n = sum(p.numel() for p in sub.parameters(recurse=False))
            if isinstance(sub, torch.nn.modules.batchnorm._BatchNorm):
                bn += n
            else:
                weights += n
        return weights, bn

    return {"": split(model), **{layer.name: split(modules[layer.name]) for layer in layers}}


def _passthrough(x):
    return x


def _shape_hook(shapes: dict, name: str):
    def hook(module, args, output):
        shapes[name] = tuple(output.shape[1:]) if output.dim() == 4 else (output.shape[1], 1, 1)
    return hook


def verify(spec: Spec, alpha: Fraction | str = "1.0", resolution: tuple[int, int] | None = None,
           classes: int | None = None, device: str = "meta") -> Verification:
    """Count ``spec`` symbolically and in torch; compare every layer."""
    (result,) = verify_grid(spec, [alpha], [resolution or spec.resolution], classes, device)
    return result


def verify_grid(spec: Spec, alphas, resolutions, classes: int | None = None,
                device: str = "meta") -> list[Verification]:
    """Verify every alpha x resolution. One model is built per distinct network
    and run at each resolution, as a user would run it."""
    if device not in DEVICES:
        raise MnsizeError(f"device must be one of {', '.join(DEVICES)}, got {device!r}")
    import_torch()
    from .nn import build_layers

    configs = []
    for alpha in alphas:
        alpha = to_alpha(alpha)
        for resolution in resolutions:
            resolution = (resolution, resolution) if isinstance(resolution, int) else tuple(resolution)
            layers = expand(spec, alpha, resolution, classes)
            _check_sizes(spec, alpha, resolution, layers, device)
            configs.append((alpha, resolution, layers))
    results = []
    built_key, model = None, None
    for alpha, resolution, layers in configs:
        key = _structure(layers)
        if key != built_key:
            model, built_key = build_layers(layers, device).eval(), key
            params = torch_params(model, layers)
        torch_layers, totals = count_torch(model, layers, (spec.in_channels, *resolution), device, params=params)
        report = count(layers)
        config = Config(spec.name, alpha, resolution, classes or spec.classes)
        results.append(Verification(config, report, totals, tuple(
            LayerCheck(row, tl) for row, tl in zip(report.rows, torch_layers))))
    return results


def _check_sizes(spec: Spec, alpha: Fraction, resolution: tuple[int, int], layers: tuple[Layer, ...],
                 device: str) -> None:
    """Refuse, before anything is built, a tensor PyTorch cannot size (its
    bytes are an int64) and, on the cpu device, a forward pass that needs
    more than MAX_CPU_BYTES."""
    where = f"{spec.name} at alpha {float(alpha):g}, {resolution[0]}x{resolution[1]}"
    largest = max(max(elements(lay.in_shape), elements(lay.out_shape), _weights(lay)) for lay in layers)
    if largest > MAX_TORCH_ELEMENTS:
        raise MnsizeError(f"{where}: a tensor of {largest:,} elements is beyond PyTorch's sizes; "
                          f"mnsize table counts it")
    if device == "cpu":
        need = forward_bytes(layers)
        if need > MAX_CPU_BYTES:
            raise MnsizeError(f"{where}: a forward pass on the cpu device may need {need / 2**30:,.1f} GiB, more "
                              f"than the {MAX_CPU_BYTES / 2**30:.0f} GiB verify allows; --device meta counts "
                              f"it without memory")


def _structure(layers: tuple[Layer, ...]) -> tuple:
    """What the modules depend on (not the input size, except an fc's features)."""
    return tuple((lay.name, lay.kind, lay.in_shape[0], lay.out_shape[0], lay.kernel, lay.stride, lay.groups,
                  lay.bias, lay.bn, lay.act, lay.in_shape if lay.kind == "fc" else None) for lay in layers)
