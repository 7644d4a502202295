"""Costs over an alpha x resolution grid, and the search for the largest model
within budgets. Symbolic and incremental: never touches torch, never expands
the spec once per candidate.

A layer's channels depend only on alpha and its spatial size only on the
resolution. So the spec is expanded once per alpha (channels) and once per
resolution (H x W of every layer), and each cost formula is probed for how it
depends on area: a convolution's mult-adds are (mult-adds at 1x1 output) x
(output area), an fc's (mult-adds at 1x1 input) x (input area), parameters
do not depend on area. A candidate's total is then a dot product. A formula
that is not of that shape is evaluated directly for every candidate, so the
result is always exactly what ``count(expand(spec, alpha, resolution))`` gives
(tests/test_search.py checks it against brute force).
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from fractions import Fraction
from operator import add, mul
from typing import NamedTuple

from .costs import layer_cost
from .expand import Layer, deployed, expand
from .latency import round_up
from .spec import Spec
from .units import DTYPE_BYTES

METRICS = ("madds", "params", "size", "activations")


class Candidate(NamedTuple):
    model: str
    alpha: Fraction
    resolution: tuple[int, int]
    madds: int
    params: int
    bn_params: int
    size_bytes: int        # params + one bias per BatchNorm-folded conv, x dtype bytes
    activation_bytes: int  # the largest input + output of any one layer, x dtype bytes
    top1: float | None = None
    latency_us: int | None = None  # predicted by a device profile, when one is given

    def metric(self, name: str) -> int:
        return {"madds": self.madds, "params": self.params, "size": self.size_bytes,
                "activations": self.activation_bytes, "latency": self.latency_us}[name]


def deployed_params(layers: tuple[Layer, ...], params: int) -> int:
    """What a deployment stores: the parameters, plus the bias that folding a
    BatchNorm into a bias-free convolution creates (one per output channel)."""
    return params + sum(lay.out_shape[0] for lay in layers if lay.bn and not lay.bias)


def peak_activations(layers: tuple[Layer, ...]) -> int:
    """Elements live at the peak of a layer-by-layer runtime: the largest
    input + output of any single layer."""
    return max(lay.activations for lay in layers)


def _at(layer: Layer, in_hw: tuple[int, int], out_hw: tuple[int, int]) -> Layer:
    return dataclasses.replace(layer, in_shape=(layer.in_shape[0], *in_hw), out_shape=(layer.out_shape[0], *out_hw))


QUANTITIES = ("madds", "params", "bn_params")


def _area_forms(layer: Layer, convention=None) -> dict[str, str] | None:
    """How each quantity of the layer's cost formula depends on area, found by
    evaluating it at a few sizes: 'const', 'in' or 'out' (proportional to the
    input or output H x W), 'in+' or 'out+' (affine: proportional plus a
    constant, like an fc's weights and bias), or None for any other shape."""
    probes = {key: layer_cost(_at(layer, *hw), convention) for key, hw in {
        "11": ((1, 1), (1, 1)), "in2": ((1, 2), (1, 1)), "in3": ((1, 3), (1, 1)),
        "out2": ((1, 1), (1, 2)), "out3": ((1, 1), (1, 3)), "both": ((1, 2), (1, 2))}.items()}
    forms = {}
    for q in QUANTITIES:
        v = {key: getattr(cost, q) for key, cost in probes.items()}
        d_in, d_out = v["in2"] - v["11"], v["out2"] - v["11"]
        linear = (v["in3"] - v["11"] == 2 * d_in and v["out3"] - v["11"] == 2 * d_out
                  and v["both"] - v["11"] == d_in + d_out)
        if not linear or (d_in and d_out):
            return None
        if not d_in and not d_out:
            forms[q] = "const"
        else:
            side, slope = ("in", d_in) if d_in else ("out", d_out)
            forms[q] = side if v["11"] == slope else side + "+"
    return forms


@dataclass(frozen=True)
class _Terms:
    """One quantity at one alpha: constant + sum(per_in x input areas) + sum(per_out x output areas)."""

    constant: int
    per_in: list[int] | None
    per_out: list[int] | None

    def at(self, in_area: list[int], out_area: list[int]) -> int:
        total = self.constant
        if self.per_in is not None:
            total += sum(map(mul, self.per_in, in_area))
        if self.per_out is not None:
            total += sum(map(mul, self.per_out, out_area))
        return total


@dataclass(frozen=True)
class _Width:
    """Everything about one alpha that does not depend on the resolution."""

    layers: tuple[Layer, ...]
    terms: dict[str, _Terms]
    folded_biases: int
    c_in: list[int]
    c_out: list[int]


def _width(layers: tuple[Layer, ...], forms: list[dict[str, str] | None], convention=None) -> _Width:
    """``layers``: the network at one alpha, expanded at 1x1, where every cost
    formula gives its unit value."""
    units = [layer_cost(layer, convention) if form is not None else None for layer, form in zip(layers, forms)]
    terms = {}
    for q in QUANTITIES:
        constant, per_in, per_out = 0, [0] * len(layers), [0] * len(layers)
        for i, (layer, form, unit) in enumerate(zip(layers, forms, units)):
            if form is None:
                continue
            value, shape = getattr(unit, q), form[q]
            if shape == "const":
                constant += value
                continue
            if shape.endswith("+"):  # affine: the slope from one more evaluation
                wide = getattr(layer_cost(_at(layer, (1, 2), (1, 1)) if shape == "in+" else
                                          _at(layer, (1, 1), (1, 2)), convention), q)
                constant += 2 * value - wide
                value = wide - value
            (per_in if shape.startswith("in") else per_out)[i] = value
        terms[q] = _Terms(constant, per_in if any(per_in) else None, per_out if any(per_out) else None)
    return _Width(layers, terms, deployed_params(layers, 0),
                  [lay.in_shape[0] for lay in layers], [lay.out_shape[0] for lay in layers])


def evaluate(spec: Spec, alphas, resolutions, classes: int | None = None, dtype: str = "fp32",
             top1: dict | None = None, convention=None, profile=None) -> list[Candidate]:
    """Every alpha x resolution of ``spec`` as a Candidate, alpha-major; counts
    by the paper's convention, or by ``convention`` (mnsize.conventions); with
    a latency ``profile`` (mnsize.latency), each candidate's predicted latency."""
    nbytes = DTYPE_BYTES[dtype]
    bn_in_params = convention.bn_params_in_params if convention is not None else 0
    top1 = top1 or {}
    # Which layers exist can depend on alpha (an inverted residual drops its
    # expansion when the hidden width rounds to the input's), so the spatial
    # sizes and formula shapes are kept per sequence of layer kinds and strides.
    structures: dict[tuple, tuple] = {}
    out = []
    for alpha in alphas:
        unit_layers = expand(spec, alpha, (1, 1), classes)
        signature = tuple((lay.kind, lay.stride) for lay in unit_layers)
        if signature not in structures:
            forms = [_area_forms(layer, convention) for layer in unit_layers]
            structures[signature] = (forms, [i for i, form in enumerate(forms) if form is None],
                                     {res: _areas(expand(spec, alpha, res, classes)) for res in resolutions})
        forms, direct, areas = structures[signature]
        w = _width(unit_layers, forms, convention)
        madds_t, params_t, bn_t = w.terms["madds"], w.terms["params"], w.terms["bn_params"]
        latency_t, per_position = _latency_terms(unit_layers, profile) if profile is not None else (None, None)
        for res in resolutions:
            in_area, out_area, hw = areas[res]
            madds, params, bn_params = madds_t.at(in_area, out_area), params_t.at(in_area, out_area), \
                bn_t.at(in_area, out_area)
            for i in direct:  # formulas of no simple shape: evaluated as they are
                cost = layer_cost(_at(w.layers[i], *hw[i]), convention)
                madds, params, bn_params = madds + cost.madds, params + cost.params, bn_params + cost.bn_params
            peak = max(map(add, map(mul, w.c_in, in_area), map(mul, w.c_out, out_area)))
            stored = params - bn_in_params * bn_params // 2 + w.folded_biases  # whatever a convention calls params
            latency = None
            if latency_t is not None:
                lanes = profile.lanes
                padded = sum(p * round_up(a, lanes) for p, a in zip(per_position, out_area) if p)
                latency = int(1000 * (profile.offset_ms + (latency_t.at(in_area, out_area) + padded) / 1e6))
            out.append(Candidate(spec.name, alpha, res, madds, params, bn_params, stored * nbytes, peak * nbytes,
                                 top1.get((alpha, res)), latency))
    return out


def _latency_terms(layers: tuple[Layer, ...], profile) -> tuple[_Terms, list[float]]:
    """A profile's per-layer prediction (mnsize.latency) in nanoseconds: terms
    affine in each layer's input and output areas, and per layer a cost per
    output position, which the caller multiplies by the positions padded to
    the profile's lanes (the only part that is not affine in area)."""
    per_in, per_out, per_position, constant = [0.0] * len(layers), [0.0] * len(layers), [0.0] * len(layers), 0.0
    for i, layer in enumerate(deployed(layers)):
        def ns(in_hw, out_hw, only=None, pad=False, layer=layer):
            probe = _at(layer, in_hw, out_hw)
            cost = layer_cost(probe)
            return 1e6 * profile.layer_ms(probe, cost.madds, cost.params, pad_positions=pad, only=only)

        def rest(in_hw, out_hw):
            return ns(in_hw, out_hw) - ns(in_hw, out_hw, only="compute_madds")

        unit = rest((1, 1), (1, 1))
        per_in[i] = rest((1, 2), (1, 1)) - unit
        per_out[i] = rest((1, 1), (1, 2)) - unit
        constant += unit - per_in[i] - per_out[i]
        position = ns((1, 1), (1, 1), only="compute_madds")
        if math.isclose(ns((1, 1), (1, 2), only="compute_madds"), 2 * position):
            per_position[i] = position
        else:  # not per position (an fc's output is always 1 x 1): as it is at 1 x 1
            constant += ns((1, 1), (1, 1), only="compute_madds", pad=True)
    return _Terms(constant, per_in, per_out), per_position


def _areas(layers: tuple[Layer, ...]) -> tuple[list[int], list[int], list[tuple]]:
    """Input areas, output areas and (input, output) H x W of every layer."""
    return ([lay.in_shape[1] * lay.in_shape[2] for lay in layers],
            [lay.out_shape[1] * lay.out_shape[2] for lay in layers],
            [(lay.in_shape[1:], lay.out_shape[1:]) for lay in layers])


# --------------------------------------------------------------------------- the search


@dataclass(frozen=True)
class Budgets:
    """Upper limits, inclusive; None where not set. Sizes in bytes."""

    max_madds: int | None = None
    max_params: int | None = None
    max_size: int | None = None
    max_activations: int | None = None
    max_latency: int | None = None  # microseconds, predicted by a profile

    def items(self) -> list[tuple[str, int]]:
        """(metric, limit) for every limit that is set."""
        pairs = [("madds", self.max_madds), ("params", self.max_params), ("size", self.max_size),
                 ("activations", self.max_activations), ("latency", self.max_latency)]
        return [(metric, limit) for metric, limit in pairs if limit is not None]

    def admit(self, candidate: Candidate) -> bool:
        return all(candidate.metric(metric) <= limit for metric, limit in self.items())


@dataclass(frozen=True)
class Fit:
    searched: int
    feasible: int
    ranked: tuple[Candidate, ...]      # best first, at most top
    unranked: tuple[Candidate, ...]    # top1 objective: feasible candidates with no published top-1
    frontier: tuple[Candidate, ...]
    smallest: Candidate | None         # when nothing fits: the candidate that comes closest

    @property
    def best(self) -> Candidate | None:
        return self.ranked[0] if self.ranked else None


OBJECTIVES = ("madds", "params", "top1")


def _size_key(c: Candidate):
    return (c.madds, c.alpha, c.resolution[0] * c.resolution[1], c.resolution)


def rank_key(objective: str):
    """Larger is better; ties: larger alpha, then larger resolution."""
    if objective == "params":
        return lambda c: (c.params, *_size_key(c))
    if objective == "top1":
        return lambda c: (c.top1, *_size_key(c))
    return _size_key


def frontier(candidates: list[Candidate]) -> tuple[Candidate, ...]:
    """The candidates no other beats on both mult-adds and params (has at least
    as many of both and more of one): the largest models in each direction of
    the width-for-resolution trade, largest mult-adds first."""
    result, most_params = [], -1
    for c in sorted(candidates, key=lambda c: (-c.madds, -c.params, -c.alpha, -c.resolution[0] * c.resolution[1])):
        if c.params > most_params:
            result.append(c)
            most_params = c.params
    return tuple(result)


def fit(candidates: list[Candidate], budgets: Budgets, objective: str = "madds", top: int = 5) -> Fit:
    feasible = [c for c in candidates if budgets.admit(c)]
    unranked: list[Candidate] = []
    rankable = feasible
    if objective == "top1":
        rankable = [c for c in feasible if c.top1 is not None]
        unranked = sorted((c for c in feasible if c.top1 is None), key=_size_key, reverse=True)
    ranked = sorted(rankable, key=rank_key(objective), reverse=True)[:top]
    smallest = None if feasible else min(candidates, key=lambda c: (c.madds, c.params, c.alpha))
    return Fit(len(candidates), len(feasible), tuple(ranked), tuple(unranked), frontier(feasible), smallest)
