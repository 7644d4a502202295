"""A spec against the real model it describes: ``mnsize verify --against``.

Both sides are reduced to their weighted operations (mnsize.graph.Atom: every
convolution and fully connected layer, with its mult-adds, weights and biases,
and the BatchNorm after it) and compared in order. The spec's come from its
own formulas; the real model's from an independent count: the ONNX counter
(mnsize.onnxfile) for an ``.onnx`` file, FlopCounterMode per module and
``numel()`` for a PyTorch module (mnsize.torchcount). The first pair that
differs is the layer where the YAML has drifted from the model.

An exporter that folds BatchNorm into the convolutions before it
(``torch.onnx.export`` in eval mode does) leaves biases where the spec has
BatchNorm; when the real model has no BatchNorm at all and the spec has, the
spec is compared as deployed (each BatchNorm folded into a bias:
mnsize.expand.deployed), and the result says so.
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction

from .expand import Config, Layer, deployed, expand, to_alpha
from .graph import Atom
from .spec import Spec

QUANTITIES = (("madds", "mult-adds"), ("params", "params"), ("bn_params", "BatchNorm params"), ("shape", "shape"))


@dataclass(frozen=True)
class Pair:
    """The n-th weighted operation of each side (None where one side has no more)."""

    position: int
    spec: Atom | None
    model: Atom | None

    @property
    def differences(self) -> tuple[str, ...]:
        if self.spec is None or self.model is None:
            return ("missing",)
        return tuple(key for key, _ in QUANTITIES if getattr(self.spec, key) != getattr(self.model, key))

    @property
    def match(self) -> bool:
        return not self.differences

    def describe(self, source: str) -> str:
        """One line: which layer differs, in what, and by how much."""
        if self.model is None:
            return f"layer {self.spec.layer} ({self.spec.kind}) has no counterpart in {source}: the spec has more " \
                   f"weighted layers"
        if self.spec is None:
            return f"{source} layer {self.model.layer!r} ({self.model.kind}) has no counterpart in the spec: the " \
                   f"model has more weighted layers"
        parts = []
        for key, label in QUANTITIES:
            ours, theirs = getattr(self.spec, key), getattr(self.model, key)
            if ours == theirs:
                continue
            if key == "shape":
                parts.append(f"output {'x'.join(map(str, ours))} in the spec, {'x'.join(map(str, theirs))} in the model")
            else:
                change = f"{theirs - ours:+,}" + (f", {100 * (theirs - ours) / ours:+.1f}%" if ours else "")
                parts.append(f"{label} {ours:,} in the spec, {theirs:,} in the model ({change})")
        return f"layer {self.spec.layer} (the model's {self.model.layer!r}): " + "; ".join(parts)


@dataclass(frozen=True)
class Comparison:
    config: Config
    source: str
    pairs: tuple[Pair, ...]
    counter: str          # how the model's side was counted
    folded: bool          # the spec was compared as deployed (BatchNorm folded into biases)

    @property
    def mismatches(self) -> tuple[Pair, ...]:
        return tuple(pair for pair in self.pairs if not pair.match)

    @property
    def match(self) -> bool:
        return not self.mismatches

    def totals(self, side: str) -> tuple[int, int, int]:
        atoms = [getattr(pair, side) for pair in self.pairs if getattr(pair, side) is not None]
        return (sum(a.madds for a in atoms), sum(a.params for a in atoms), sum(a.bn_params for a in atoms))


def compare(spec: Spec, config: Config, model_atoms: tuple[Atom, ...], source: str, counter: str) -> Comparison:
    """The spec at ``config`` against the real model's weighted operations."""
    from .graph import layer_atoms

    layers: tuple[Layer, ...] = expand(spec, config.alpha, config.resolution, config.classes)
    folded = any(lay.bn for lay in layers) and not any(atom.bn_params for atom in model_atoms)
    spec_atoms = layer_atoms(deployed(layers) if folded else layers)
    count = max(len(spec_atoms), len(model_atoms))
    pairs = tuple(Pair(i + 1, spec_atoms[i] if i < len(spec_atoms) else None,
                       model_atoms[i] if i < len(model_atoms) else None) for i in range(count))
    return Comparison(config, source, pairs, counter, folded)


def source_alpha(alpha: Fraction | None, kwargs: str | None) -> Fraction:
    """The α to expand the spec at: as given, else the module's width keyword
    (width_mult, alpha, width_multiplier), else 1."""
    if alpha is not None:
        return alpha
    if kwargs:
        from .torchload import alpha_from_kwargs

        given = alpha_from_kwargs(kwargs)
        if given is not None:
            return to_alpha(given)
    return Fraction(1)
