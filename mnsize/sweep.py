"""Costs over an alpha x resolution grid, symbolic and incremental: never
touches torch, never expands the spec once per candidate, never holds more
than one alpha's candidates.

A layer's channels depend only on alpha and its spatial size only on the
resolution. So the spec is expanded once per alpha (channels) and each cost
formula is probed for how it depends on area: a convolution's mult-adds are
(mult-adds at 1x1 output) x (output area), an fc's (mult-adds at 1x1 input) x
(input area), parameters do not depend on area. Spatial sizes follow a few
columns shared by many layers (every layer after the same strides has the
same H x W: mnsize.areas), so a candidate's total is a short dot product of
per-alpha coefficients with per-resolution areas, computed for all resolutions of an
alpha at once (a ``Block``). A formula that is not of that shape is evaluated
directly for every candidate, so the result is always exactly what
``count(expand(spec, alpha, resolution))`` gives (tests/test_search.py checks
it against brute force).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterator
from fractions import Fraction
from operator import add
from typing import NamedTuple

from .areas import Peak, Spatial, linear, spatial_columns
from .costs import layer_cost
from .expand import Layer, deployed, expand
from .spec import Spec
from .units import DTYPE_BYTES


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


# --------------------------------------------------------------------------- cost forms


def _at(layer: Layer, in_hw: tuple[int, int], out_hw: tuple[int, int]) -> Layer:
    return dataclasses.replace(layer, in_shape=(layer.in_shape[0], *in_hw), out_shape=(layer.out_shape[0], *out_hw))


QUANTITIES = ("madds", "params", "bn_params")


def _area_forms(layer: Layer, convention=None, fixed_in: bool = False, fixed_out: bool = False) -> dict[str, str] | None:
    """How each quantity of the layer's cost formula depends on area, found by
    evaluating it at a few sizes: 'const', 'in' or 'out' (proportional to the
    input or output H x W), 'in+' or 'out+' (affine: proportional plus a
    constant, like an fc's weights and bias), or None for any other shape.
    A side that is 1 x 1 at every resolution searched (``fixed_in``,
    ``fixed_out``: after global pooling) stays 1 x 1 in the probes."""
    def grown(area: int, fixed: bool) -> tuple[int, int]:
        return (1, 1) if fixed else (1, area)

    probes = {key: layer_cost(_at(layer, grown(a, fixed_in), grown(b, fixed_out)), convention) for key, (a, b) in {
        "11": (1, 1), "in2": (2, 1), "in3": (3, 1), "out2": (1, 2), "out3": (1, 3), "both": (2, 2)}.items()}
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


class Block:
    """The candidates of one model at one alpha, as columns: one entry per
    resolution. Iterating gives Candidates; activations are computed when
    asked for (a search without an activations budget needs few of them)."""

    __slots__ = ("model", "alpha", "resolutions", "areas", "madds", "params", "bn_params", "size_bytes", "top1",
                 "latency_us", "_nbytes", "_peak", "_activations")

    def __init__(self, model, alpha, resolutions, areas, madds, params, bn_params, size_bytes, top1, latency_us,
                 nbytes=1, peak=None, activation_bytes=None) -> None:
        self.model, self.alpha, self.resolutions, self.areas = model, alpha, resolutions, areas
        self.madds, self.params, self.bn_params, self.size_bytes = madds, params, bn_params, size_bytes
        self.top1, self.latency_us = top1, latency_us
        self._nbytes, self._peak, self._activations = nbytes, peak, activation_bytes

    @classmethod
    def of(cls, candidates: list[Candidate]) -> Block:
        """Candidates of one model and alpha as a block."""
        first = candidates[0]
        resolutions = [c.resolution for c in candidates]
        return cls(first.model, first.alpha, resolutions, [h * w for h, w in resolutions],
                   [c.madds for c in candidates], [c.params for c in candidates],
                   [c.bn_params for c in candidates], [c.size_bytes for c in candidates],
                   [c.top1 for c in candidates], [c.latency_us for c in candidates],
                   activation_bytes=[c.activation_bytes for c in candidates])

    def __len__(self) -> int:
        return len(self.resolutions)

    @property
    def activation_bytes(self) -> list[int]:
        if self._activations is None:
            self._activations = self._peak.column(self._nbytes)
        return self._activations

    def column(self, metric: str) -> list:
        if metric == "activations":
            return self.activation_bytes
        return {"madds": self.madds, "params": self.params, "size": self.size_bytes,
                "latency": self.latency_us}[metric]

    def candidate(self, i: int) -> Candidate:
        activations = self._activations[i] if self._activations is not None else self._nbytes * self._peak.at(i)
        latency = self.latency_us[i] if self.latency_us is not None else None
        return Candidate(self.model, self.alpha, self.resolutions[i], self.madds[i], self.params[i],
                         self.bn_params[i], self.size_bytes[i], activations, self.top1[i], latency)

    def __iter__(self) -> Iterator[Candidate]:
        return map(self.candidate, range(len(self)))


def blocks(spec: Spec, alphas, resolutions, classes: int | None = None, dtype: str = "fp32",
           top1: dict | None = None, convention=None, profile=None) -> Iterator[Block]:
    """Every alpha x resolution of ``spec``, one Block per alpha, in order;
    counts by the paper's convention, or by ``convention``
    (mnsize.conventions); with a latency ``profile`` (mnsize.latency), each
    candidate's predicted latency."""
    resolutions = [tuple(res) for res in resolutions]
    if not resolutions:
        return
    # Which layers exist can depend on alpha (an inverted residual drops its
    # expansion when the hidden width rounds to the input's), so the spatial
    # sizes and formula shapes are kept per sequence of layer kinds and strides.
    structures: dict[tuple, _Structure] = {}
    for alpha in alphas:
        unit_layers = expand(spec, alpha, (1, 1), classes, widths_only=True)
        signature = tuple((lay.kind, lay.stride) for lay in unit_layers)
        if signature not in structures:
            structures[signature] = _Structure.of(spec, alpha, classes, unit_layers, resolutions, convention)
        yield _block(spec.name, alpha, unit_layers, structures[signature], dtype, top1, convention, profile)


class _Structure(NamedTuple):
    """What the alphas of one sequence of layer kinds and strides share: each
    layer's cost form (None: evaluated directly), and the spatial sizes."""

    forms: list[dict[str, str] | None]
    direct: list[int]
    spatial: Spatial

    @classmethod
    def of(cls, spec: Spec, alpha: Fraction, classes: int | None, unit_layers: tuple[Layer, ...],
           resolutions: list[tuple[int, int]], convention) -> _Structure:
        spatial = spatial_columns(spec, alpha, classes, unit_layers, resolutions)
        forms = [_area_forms(layer, convention, i == spatial.ones, o == spatial.ones)
                 for layer, (i, o) in zip(unit_layers, spatial.where)]
        return cls(forms, [i for i, form in enumerate(forms) if form is None], spatial)


def _block(model: str, alpha: Fraction, unit_layers: tuple[Layer, ...], structure: _Structure, dtype: str,
           top1: dict | None, convention, profile) -> Block:
    """One alpha's candidates, every resolution at once."""
    forms, direct, spatial = structure
    n = len(spatial.resolutions)
    terms = _terms(unit_layers, forms, spatial, convention)
    madds, params, bn_params = (linear(*terms[q], spatial) for q in QUANTITIES)
    for i in direct:  # formulas of no simple shape: evaluated as they are
        for r in range(n):
            cost = layer_cost(_at(unit_layers[i], *spatial.hw(i, r)), convention)
            madds[r] += cost.madds
            params[r] += cost.params
            bn_params[r] += cost.bn_params
    nbytes = DTYPE_BYTES[dtype]
    bn_in_params = convention.bn_params_in_params if convention is not None else 0
    folded = deployed_params(unit_layers, 0)
    # whatever a convention calls params, stored with the folded biases
    if direct or any(terms["params"][1].values()) or any(terms["bn_params"][1].values()):
        size = [nbytes * (p - bn_in_params * b // 2 + folded) for p, b in zip(params, bn_params)]
    else:  # the same at every resolution
        size = [nbytes * (params[0] - bn_in_params * bn_params[0] // 2 + folded)] * n
    published = {res: value for (a, res), value in (top1 or {}).items() if a == alpha}
    top1_column = [published.get(res) for res in spatial.resolutions] if published else [None] * n
    latency = _latencies(unit_layers, spatial, profile) if profile is not None else None
    return Block(model, alpha, spatial.resolutions, spatial.areas, madds, params, bn_params, size, top1_column,
                 latency, nbytes, Peak(unit_layers, spatial))


def candidates(spec: Spec, alphas, resolutions, classes: int | None = None, dtype: str = "fp32",
               top1: dict | None = None, convention=None, profile=None) -> Iterator[Candidate]:
    """Every alpha x resolution of ``spec`` as a Candidate, alpha-major, one at a time."""
    for block in blocks(spec, alphas, resolutions, classes, dtype, top1, convention, profile):
        yield from block


def evaluate(spec: Spec, alphas, resolutions, classes: int | None = None, dtype: str = "fp32",
             top1: dict | None = None, convention=None, profile=None) -> list[Candidate]:
    """``candidates`` as a list, for a caller that needs every one (a grid)."""
    return list(candidates(spec, alphas, resolutions, classes, dtype, top1, convention, profile))


def _terms(layers: tuple[Layer, ...], forms: list[dict[str, str] | None], spatial: Spatial,
           convention=None) -> dict[str, tuple[int, dict[int, int]]]:
    """Per quantity at one alpha: a constant and a coefficient per area column.
    ``layers``: the network expanded at 1x1, where every cost formula gives
    its unit value."""
    terms: dict[str, tuple[int, dict[int, int]]] = {}
    units = [layer_cost(layer, convention) if form is not None else None for layer, form in zip(layers, forms)]
    for q in QUANTITIES:
        constant, coefficients = 0, {}
        for layer, form, unit, (col_in, col_out) in zip(layers, forms, units, spatial.where):
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
            column = col_in if shape.startswith("in") else col_out
            if column == spatial.ones:
                constant += value
            else:
                coefficients[column] = coefficients.get(column, 0) + value
        terms[q] = (constant, coefficients)
    return terms


def _latencies(layers: tuple[Layer, ...], spatial: Spatial, profile) -> list[int]:
    """Each resolution's predicted latency in whole microseconds (rounded up):
    a constant plus a float coefficient per area column and per padded area
    column (areas rounded up to the profile's lanes)."""
    constant, per_in, per_out, per_position = _latency_terms(layers, profile)
    coefficients: dict[tuple[bool, int], float] = {}
    for (i, o), a, b, p in zip(spatial.where, per_in, per_out, per_position):
        for key, value in (((False, i), a), ((False, o), b), ((True, o), p)):
            if value:
                coefficients[key] = coefficients.get(key, 0.0) + value
    total = [constant] * len(spatial.resolutions)
    for (padded, c), k in coefficients.items():
        column = spatial.padded(c, profile.lanes) if padded else spatial.columns[c]
        total = list(map(add, total, map(k.__mul__, column)))
    offset = profile.offset_ms
    return [profile.microseconds(offset + ns / 1e6) for ns in total]


def _latency_terms(layers: tuple[Layer, ...], profile) -> tuple[float, list[float], list[float], list[float]]:
    """A profile's per-layer prediction (mnsize.latency) in nanoseconds: a
    constant, per layer a cost per unit of input area and of output area, and
    per layer a cost per output position, which the caller multiplies by the
    positions padded to the profile's lanes (the only part that is not affine
    in area)."""
    per_in, per_out, per_position, constant = [0.0] * len(layers), [0.0] * len(layers), [0.0] * len(layers), 0.0
    weights = 0.0  # a network's weights do not change with its resolution: neither does their spill
    for i, unit_layer in enumerate(deployed(layers)):  # every side 1 x 1
        probes = {"11": unit_layer, "in": _at(unit_layer, (1, 2), (1, 1)), "out": _at(unit_layer, (1, 1), (1, 2))}
        costs = {key: layer_cost(probe) for key, probe in probes.items()}
        weights += 4.0 * costs["11"].params

        def ns(key, only=None, pad=False):
            return 1e6 * profile.layer_ms(probes[key], costs[key].madds, costs[key].params, pad_positions=pad,
                                          only=only)

        def rest(key):
            return ns(key) - ns(key, only=profile.position_features)

        unit = rest("11")
        per_in[i] = rest("in") - unit
        per_out[i] = rest("out") - unit
        constant += unit - per_in[i] - per_out[i]
        position = ns("11", only=profile.position_features)
        if math.isclose(ns("out", only=profile.position_features), 2 * position):
            per_position[i] = position
        else:  # not per position (an fc's output is always 1 x 1): as it is at 1 x 1
            constant += ns("11", only=profile.position_features, pad=True)
    return constant + 1e6 * profile.spill_ms(weights), per_in, per_out, per_position
