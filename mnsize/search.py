"""Costs over an alpha x resolution grid, and the search for the largest model
within budgets. Symbolic and incremental: never touches torch, never expands
the spec once per candidate, never holds more than one alpha's candidates.

A layer's channels depend only on alpha and its spatial size only on the
resolution. So the spec is expanded once per alpha (channels) and each cost
formula is probed for how it depends on area: a convolution's mult-adds are
(mult-adds at 1x1 output) x (output area), an fc's (mult-adds at 1x1 input) x
(input area), parameters do not depend on area. Spatial sizes follow a few
columns shared by many layers (every layer after the same strides has the
same H x W), so a candidate's total is a short dot product of per-alpha
coefficients with per-resolution areas, computed for all resolutions of an
alpha at once (a ``Block``). A formula that is not of that shape is evaluated
directly for every candidate, so the result is always exactly what
``count(expand(spec, alpha, resolution))`` gives (tests/test_search.py checks
it against brute force).

The search consumes blocks one at a time and keeps only what it reports: the
counts, the best ``top``, the Pareto frontier and the smallest candidate.
"""

from __future__ import annotations

import bisect
import dataclasses
import heapq
import itertools
import math
import sys
from array import array
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from fractions import Fraction
from operator import add
from typing import NamedTuple

from .costs import layer_cost
from .errors import MnsizeError
from .expand import MAX_SIDE, Layer, deployed, expand
from .latency import round_up
from .spec import Spec
from .units import DTYPE_BYTES

METRICS = ("madds", "params", "size", "activations")

# Bounds on one search, so that anything within them takes seconds, not
# minutes or all the memory (benchmarks/fit_scale.py measures them).
#: candidates x layers
MAX_LAYER_EVALUATIONS = 100_000_000
#: alphas x layers: each layer is built and costed at each alpha
MAX_LAYER_EXPANSIONS = 150_000
#: the same with a latency profile, whose per-layer prediction is probed at each alpha
MAX_PROFILED_LAYER_EXPANSIONS = 15_000
#: cells one grid shows
MAX_GRID_CELLS = 10_000


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


# --------------------------------------------------------------------------- bounds


def check_work(specs: Iterable[Spec], alphas, resolutions, classes: int | None = None, profile=None,
               hint: str = "narrow the alphas or the resolutions") -> None:
    """Refuse, before any of it is done, a search bigger than a few seconds of
    work (the MAX_ bounds above)."""
    if not alphas or not resolutions:
        return
    layers = [len(expand(spec, alphas[0], (1, 1), classes)) for spec in specs]
    n_alphas, n_resolutions = len(alphas), len(resolutions)
    most, what = ((MAX_LAYER_EXPANSIONS, "") if profile is None else
                  (MAX_PROFILED_LAYER_EXPANSIONS, " with a latency profile"))
    if n_alphas * sum(layers) > most:
        raise MnsizeError(f"{n_alphas:,} alphas × {_layers(layers)} is more than the {most:,} layer expansions "
                          f"one search{what} does; {hint}")
    if n_alphas * n_resolutions * sum(layers) > MAX_LAYER_EVALUATIONS:
        raise MnsizeError(f"{len(layers) * n_alphas * n_resolutions:,} candidates × {_layers(layers)} is more than "
                          f"the {MAX_LAYER_EVALUATIONS:,} layer evaluations one search does; {hint}")


def _layers(counts: list[int]) -> str:
    low, high = min(counts), max(counts)
    return f"{high:,} layers" if low == high else f"{low:,} to {high:,} layers"


def check_cells(alphas, resolutions, hint: str = "narrow the alphas or the resolutions") -> None:
    """Refuse a grid of more than MAX_GRID_CELLS cells before computing any."""
    cells = len(alphas) * len(resolutions)
    if cells > MAX_GRID_CELLS:
        raise MnsizeError(f"{len(alphas):,} alphas × {len(resolutions):,} resolutions is {cells:,} cells, more "
                          f"than the {MAX_GRID_CELLS:,} one grid shows; {hint}")


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


# --------------------------------------------------------------------------- spatial sizes


def _side(side: int, divisor: int) -> int:
    return -(-side // divisor) if divisor else 1


#: Python's integers are arbitrary precision, so a whole column of areas packed
#: into one integer (64 bits per resolution) is scaled and summed with the
#: other columns in one C-level operation each, and unpacked through an array:
#: exact as long as no field can carry into the next, which is checked first.
_FIELD_BYTES = array("q").itemsize
_FIELD_LIMIT = 2 ** (8 * _FIELD_BYTES - 1)


def _pack(column: list[int]) -> int:
    return int.from_bytes(array("q", column).tobytes(), sys.byteorder)


#: (H, W) at which a derived rule for spatial sizes is checked against expand
#: (which sizes height and width alike and apart); the largest also tells
#: global pooling (1 x 1 from any size) from a stride
LARGE_PROBE = (MAX_SIDE // 15 + 2, MAX_SIDE - 17)
PROBES = ((1, 2), (3, 7), (97, 225))


@dataclass
class _Spatial:
    """The H x W of every layer over the resolutions of a search, as columns.

    ``columns`` are the distinct area columns (one value per resolution);
    ``where`` gives, per layer, the column of its input area and of its output
    area. With SAME padding a layer's side is ceil(side / d) for the product d
    of the strides before it, or 1 after global pooling: ``divisors`` holds
    (input d, output d) per layer, 0 for 1. Where that rule does not describe
    the spec, every resolution is expanded and ``hws`` holds what it gave."""

    resolutions: list[tuple[int, int]]
    areas: list[int]                 # input H x W: breaks ties between candidates
    columns: list[list[int]]
    where: list[tuple[int, int]]
    divisors: list[tuple[int, int]] | None
    hws: list[list[tuple]] | None
    ones: int | None = None          # the column that is 1 everywhere (after global pooling), if any
    maxima: list[int] = field(init=False)
    packed: list[int] = field(init=False)    # each column packed into one integer (see _linear)
    packed_ones: int = field(init=False)
    chain: list[int] | None = field(init=False)  # the columns largest first, when each is >= the next everywhere
    _padded: dict = field(init=False, default_factory=dict)

    def __post_init__(self) -> None:
        self.maxima = [max(column, default=0) for column in self.columns]
        order = sorted(range(len(self.columns)), key=lambda c: (-self.maxima[c], -sum(self.columns[c])))
        ordered = all(map(int.__ge__, self.columns[a], self.columns[b]) for a, b in zip(order, order[1:]))
        self.chain = order if ordered else None
        self.packed = [_pack(column) if top < _FIELD_LIMIT else 0 for column, top in zip(self.columns, self.maxima)]
        self.packed_ones = _pack([1] * len(self.resolutions))

    def hw(self, layer: int, r: int) -> tuple[tuple[int, int], tuple[int, int]]:
        if self.hws is not None:
            return self.hws[r][layer]
        h, w = self.resolutions[r]
        d_in, d_out = self.divisors[layer]
        return (_side(h, d_in), _side(w, d_in)), (_side(h, d_out), _side(w, d_out))

    def padded(self, column: int, lanes: int) -> list[int]:
        """A column's areas rounded up to a multiple of ``lanes``."""
        key = (column, lanes)
        if key not in self._padded:
            self._padded[key] = [round_up(area, lanes) for area in self.columns[column]]
        return self._padded[key]


def _spatial(spec: Spec, alpha: Fraction, classes: int | None, layers: tuple[Layer, ...],
             resolutions: list[tuple[int, int]]) -> _Spatial:
    areas = [h * w for h, w in resolutions]
    divisors = _divisors(spec, alpha, classes, layers, resolutions)
    if divisors is not None:
        distinct = sorted({d for pair in divisors for d in pair})
        index = {d: i for i, d in enumerate(distinct)}
        columns = [areas if d == 1 else [1] * len(resolutions) if d == 0 else
                   [_side(h, d) * _side(w, d) for h, w in resolutions] for d in distinct]
        return _Spatial(resolutions, areas, columns, [(index[i], index[o]) for i, o in divisors], divisors, None,
                        index.get(0))
    hws = [[(lay.in_shape[1:], lay.out_shape[1:]) for lay in expand(spec, alpha, res, classes)]
           for res in resolutions]
    found: dict[tuple, int] = {}
    where = []
    for i in range(len(layers)):
        pair = []
        for side in (0, 1):
            column = tuple(hw[i][side][0] * hw[i][side][1] for hw in hws)
            pair.append(found.setdefault(column, len(found)))
        where.append(tuple(pair))
    return _Spatial(resolutions, areas, [list(column) for column in found], where, None, hws,
                    found.get((1,) * len(resolutions)))


def _divisors(spec: Spec, alpha: Fraction, classes: int | None, layers: tuple[Layer, ...],
              resolutions: list[tuple[int, int]]) -> list[tuple[int, int]] | None:
    """Each layer's (input, output) side divisor, derived from the strides and
    checked against expand at PROBES and the resolutions' extremes; None when
    expand does not follow the rule."""
    hs, ws = [h for h, _ in resolutions], [w for _, w in resolutions]
    largest = expand(spec, alpha, LARGE_PROBE, classes)
    divisors, d = [], 1
    for layer, big in zip(layers, largest):
        d_in = d
        d = d * (layer.stride or 1)
        pooled = big.out_shape[1:] == (1, 1) and any(_side(side, d) != 1 for side in LARGE_PROBE)
        if pooled:  # global pooling, an fc: 1 x 1 from any size
            d = 0
        divisors.append((d_in, d))
    probes = {LARGE_PROBE: largest}
    for hw in PROBES + ((min(hs), max(ws)), (max(hs), min(ws))):
        probes.setdefault(hw, None)
    for (h, w), expanded in probes.items():
        expanded = expanded or expand(spec, alpha, (h, w), classes)
        if len(expanded) != len(layers):
            return None
        for lay, (d_in, d_out) in zip(expanded, divisors):
            if (lay.in_shape[1:] != (_side(h, d_in), _side(w, d_in))
                    or lay.out_shape[1:] != (_side(h, d_out), _side(w, d_out))):
                return None
    return divisors


# --------------------------------------------------------------------------- one alpha


def _linear(constant: int, coefficients: dict[int, int], spatial: _Spatial) -> list[int]:
    """constant + sum(coefficient x column), for every resolution."""
    n = len(spatial.resolutions)
    terms = [(k, c) for c, k in coefficients.items() if k]
    if not terms:
        return [constant] * n
    largest = sum(k * spatial.maxima[c] for k, c in terms) + max(constant, 0)
    if all(k > 0 for k, _ in terms) and largest < _FIELD_LIMIT:
        packed = sum(k * spatial.packed[c] for k, c in terms)
        if constant > 0:
            packed += constant * spatial.packed_ones
        values = array("q", packed.to_bytes(n * _FIELD_BYTES, sys.byteorder)).tolist()
        return values if constant >= 0 else list(map(constant.__add__, values))
    columns = spatial.columns
    total = [constant] * n
    for k, c in terms:
        total = list(map(add, total, map(k.__mul__, columns[c])))
    return total


class _Peak:
    """The largest input + output of any layer, as a max of a few linear terms:
    layers with the same input and output columns whose channels another one
    matches or exceeds can never be the largest."""

    def __init__(self, layers: tuple[Layer, ...], spatial: _Spatial) -> None:
        groups: dict[tuple[int, int], list[tuple[int, int]]] = {}
        for lay, (i, o) in zip(layers, spatial.where):
            c_in, c_out = lay.in_shape[0], lay.out_shape[0]
            if i == o:
                groups.setdefault((i, i), []).append((c_in + c_out, 0))
            else:
                groups.setdefault((i, o), []).append((c_in, c_out))
        self.spatial = spatial
        terms: list[tuple[int, int, int, int]] = []  # (input channels, column, output channels, column)
        for (i, o), pairs in groups.items():
            kept: list[tuple[int, int]] = []
            for a, b in sorted(pairs, reverse=True):
                if not kept or b > kept[-1][1]:
                    kept.append((a, b))
            terms += [(a, i, b, o) for a, b in kept]
        self.terms = _undominated(terms, spatial.chain) if spatial.chain is not None else terms

    def at(self, r: int) -> int:
        columns = self.spatial.columns
        return max(a * columns[i][r] + b * columns[o][r] for a, i, b, o in self.terms)

    def column(self, scale: int = 1) -> list[int]:
        """The peak at every resolution, times ``scale``."""
        values = [_linear(0, {i: scale * a} if i == o else {i: scale * a, o: scale * b}, self.spatial)
                  for a, i, b, o in self.terms]
        return values[0] if len(values) == 1 else list(map(max, *values))


def _undominated(terms: list[tuple[int, int, int, int]], chain: list[int]) -> list[tuple[int, int, int, int]]:
    """The terms that can be the largest somewhere. With columns C1 >= C2 >=
    ... >= 0 everywhere, sum(x_k C_k) = sum over k of (x_1 + ... + x_k)(C_k -
    C_k+1): a term whose every prefix sum of coefficients (in that order) is
    at least another's is at least as large at every resolution."""
    rank = {c: k for k, c in enumerate(chain)}
    prefixed = []
    for term in terms:
        a, i, b, o = term
        x = [0] * len(chain)
        x[rank[i]] += a
        x[rank[o]] += b
        prefixed.append((list(itertools.accumulate(x)), term))
    prefixed.sort(key=lambda pt: pt[0][-1], reverse=True)
    kept: list[tuple[list[int], tuple]] = []
    for sums, term in prefixed:
        if not any(all(map(int.__ge__, other, sums)) for other, _ in kept):
            kept.append((sums, term))
    return [term for _, term in kept]


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
    nbytes = DTYPE_BYTES[dtype]
    bn_in_params = convention.bn_params_in_params if convention is not None else 0
    resolutions = [tuple(res) for res in resolutions]
    n = len(resolutions)
    if not n:
        return
    # Which layers exist can depend on alpha (an inverted residual drops its
    # expansion when the hidden width rounds to the input's), so the spatial
    # sizes and formula shapes are kept per sequence of layer kinds and strides.
    structures: dict[tuple, tuple] = {}
    for alpha in alphas:
        unit_layers = expand(spec, alpha, (1, 1), classes)
        signature = tuple((lay.kind, lay.stride) for lay in unit_layers)
        if signature not in structures:
            spatial = _spatial(spec, alpha, classes, unit_layers, resolutions)
            forms = [_area_forms(layer, convention, i == spatial.ones, o == spatial.ones)
                     for layer, (i, o) in zip(unit_layers, spatial.where)]
            structures[signature] = (forms, [i for i, form in enumerate(forms) if form is None], spatial)
        forms, direct, spatial = structures[signature]
        terms = _terms(unit_layers, forms, spatial, convention)
        madds, params, bn_params = (_linear(*terms[q], spatial) for q in QUANTITIES)
        for i in direct:  # formulas of no simple shape: evaluated as they are
            for r in range(n):
                cost = layer_cost(_at(unit_layers[i], *spatial.hw(i, r)), convention)
                madds[r] += cost.madds
                params[r] += cost.params
                bn_params[r] += cost.bn_params
        folded = deployed_params(unit_layers, 0)
        # whatever a convention calls params, stored with the folded biases
        if direct or any(terms["params"][1].values()) or any(terms["bn_params"][1].values()):
            size = [nbytes * (p - bn_in_params * b // 2 + folded) for p, b in zip(params, bn_params)]
        else:  # the same at every resolution
            size = [nbytes * (params[0] - bn_in_params * bn_params[0] // 2 + folded)] * n
        published = {res: value for (a, res), value in (top1 or {}).items() if a == alpha}
        top1_column = [published.get(res) for res in resolutions] if published else [None] * n
        latency = _latencies(unit_layers, spatial, profile) if profile is not None else None
        yield Block(spec.name, alpha, resolutions, spatial.areas, madds, params, bn_params, size, top1_column,
                    latency, nbytes, _Peak(unit_layers, spatial))


def candidates(spec: Spec, alphas, resolutions, classes: int | None = None, dtype: str = "fp32",
               top1: dict | None = None, convention=None, profile=None) -> Iterator[Candidate]:
    """Every alpha x resolution of ``spec`` as a Candidate, alpha-major, one at a time."""
    for block in blocks(spec, alphas, resolutions, classes, dtype, top1, convention, profile):
        yield from block


def evaluate(spec: Spec, alphas, resolutions, classes: int | None = None, dtype: str = "fp32",
             top1: dict | None = None, convention=None, profile=None) -> list[Candidate]:
    """``candidates`` as a list, for a caller that needs every one (a grid)."""
    return list(candidates(spec, alphas, resolutions, classes, dtype, top1, convention, profile))


def _terms(layers: tuple[Layer, ...], forms: list[dict[str, str] | None], spatial: _Spatial,
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


def _latencies(layers: tuple[Layer, ...], spatial: _Spatial, profile) -> list[int]:
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
    for i, unit_layer in enumerate(deployed(layers)):  # every side 1 x 1
        probes = {"11": unit_layer, "in": _at(unit_layer, (1, 2), (1, 1)), "out": _at(unit_layer, (1, 1), (1, 2))}
        costs = {key: layer_cost(probe) for key, probe in probes.items()}

        def ns(key, only=None, pad=False):
            return 1e6 * profile.layer_ms(probes[key], costs[key].madds, costs[key].params, pad_positions=pad,
                                          only=only)

        def rest(key):
            return ns(key) - ns(key, only="compute_madds")

        unit = rest("11")
        per_in[i] = rest("in") - unit
        per_out[i] = rest("out") - unit
        constant += unit - per_in[i] - per_out[i]
        position = ns("11", only="compute_madds")
        if math.isclose(ns("out", only="compute_madds"), 2 * position):
            per_position[i] = position
        else:  # not per position (an fc's output is always 1 x 1): as it is at 1 x 1
            constant += ns("11", only="compute_madds", pad=True)
    return constant, per_in, per_out, per_position


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
    unranked: tuple[Candidate, ...]    # top1 objective: the largest feasible candidates with no published top-1
    frontier: tuple[Candidate, ...]
    smallest: Candidate | None         # when nothing fits: the candidate that comes closest
    unranked_count: int = 0            # feasible candidates with no published top-1, all of them

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


def _frontier_key(c: Candidate):
    return (-c.madds, -c.params, -c.alpha, -c.resolution[0] * c.resolution[1])


class _Frontier:
    """The Pareto frontier of the candidates added so far, kept as they come:
    in the order largest mult-adds first (then params, alpha, area; then the
    order they came in), each point has more params than every point before
    it, so a newcomer is on the frontier when the point just before its place
    has fewer params, and it removes the points after it that have no more."""

    def __init__(self) -> None:
        self.points: list[Candidate] = []
        self.keys: list[tuple] = []

    def add(self, c: Candidate) -> None:
        key = _frontier_key(c)
        place = bisect.bisect_right(self.keys, key)
        if place and self.points[place - 1].params >= c.params:
            return
        end = place
        while end < len(self.points) and self.points[end].params <= c.params:
            end += 1
        self.points[place:end] = [c]
        self.keys[place:end] = [key]


def frontier(candidates: Iterable[Candidate]) -> tuple[Candidate, ...]:
    """The candidates no other beats on both mult-adds and params (has at least
    as many of both and more of one): the largest models in each direction of
    the width-for-resolution trade, largest mult-adds first."""
    points = _Frontier()
    for c in candidates:
        points.add(c)
    return tuple(points.points)


def fit(candidates: Iterable[Candidate] | Iterable[Block], budgets: Budgets, objective: str = "madds",
        top: int = 5) -> Fit:
    """The best ``top`` feasible candidates by ``objective``, the frontier of
    the feasible ones, and when none is feasible the smallest candidate. One
    pass over ``candidates`` (Candidates, or the Blocks ``blocks`` yields, the
    fast way), keeping only what the result holds."""
    search = _Search(budgets, objective, top)
    for block in _as_blocks(candidates):
        search.add(block)
    return search.result()


BLOCK_SIZE = 1024  # Candidates gathered into one block when given one by one


def _as_blocks(items: Iterable) -> Iterator[Block]:
    run: list[Candidate] = []
    for item in items:
        if isinstance(item, Block):
            if run:
                yield Block.of(run)
                run = []
            yield item
            continue
        if run and (len(run) == BLOCK_SIZE or item.model != run[0].model or item.alpha != run[0].alpha):
            yield Block.of(run)
            run = []
        run.append(item)
    if run:
        yield Block.of(run)


class _Search:
    def __init__(self, budgets: Budgets, objective: str, top: int) -> None:
        self.limits = budgets.items()
        self.objective, self.top = objective, top
        self.key = rank_key(objective)
        self.searched = self.feasible = self.unranked_count = 0
        self.ranked: list[Candidate] = []
        self.unranked: list[Candidate] = []
        self.frontier = _Frontier()
        self.smallest: Candidate | None = None

    def result(self) -> Fit:
        return Fit(self.searched, self.feasible, tuple(self.ranked), tuple(self.unranked),
                   tuple(self.frontier.points), None if self.feasible else self.smallest, self.unranked_count)

    def add(self, block: Block) -> None:
        self.searched += len(block)
        feasible: list[int] | None = None
        for metric, limit in self.limits:
            values = block.column(metric)
            feasible = ([i for i, v in enumerate(values) if v <= limit] if feasible is None else
                        [i for i in feasible if values[i] <= limit])
            if not feasible:
                break
        if feasible is None:
            feasible = list(range(len(block)))
        if not feasible:
            if not self.feasible:
                self._smallest(block)
            return
        self.feasible += len(feasible)
        pool = feasible
        if self.objective == "top1":
            top1 = block.top1
            pool = [i for i in feasible if top1[i] is not None]
            unranked = [i for i in feasible if top1[i] is None]
            self.unranked_count += len(unranked)
            self.unranked = self._best(self.unranked, block, unranked, _size_key, (block.madds,))
            ranking = (block.top1, block.madds)
        elif self.objective == "params":
            ranking = (block.params, block.madds)
        else:
            ranking = (block.madds,)
        self.ranked = self._best(self.ranked, block, pool, self.key, ranking)
        for i in self._block_frontier(block, feasible):
            self.frontier.add(block.candidate(i))

    def _best(self, best: list[Candidate], block: Block, pool: list[int], key, ranking: tuple) -> list[Candidate]:
        """The ``top`` largest by ``key`` of ``best`` (earlier) and the block's
        ``pool``; ``ranking``: the block's columns that ``key`` starts with."""
        if not pool:
            return best
        primary = ranking[0]
        floor = None
        if len(best) == self.top:
            floor = key(best[-1])[0]
        if len(pool) > self.top:
            cut = heapq.nlargest(self.top, [primary[i] for i in pool])[-1]
            floor = cut if floor is None else max(floor, cut)
        if floor is not None:
            pool = [i for i in pool if primary[i] >= floor]
        columns = ranking + (block.areas, block.resolutions)
        # within a block alpha is the same, so the columns order it as ``key`` does
        chosen = heapq.nlargest(self.top, pool, key=lambda i: tuple(column[i] for column in columns))
        return heapq.nlargest(self.top, best + [block.candidate(i) for i in chosen], key=key)

    @staticmethod
    def _block_frontier(block: Block, feasible: list[int]) -> list[int]:
        """The block's feasible candidates that may be on the frontier."""
        madds, params, areas = block.madds, block.params, block.areas
        widths = {params[i] for i in feasible}
        if len(widths) == 1:  # the same params at every resolution: only the largest can be
            most = max(madds[i] for i in feasible)
            tied = [i for i in feasible if madds[i] == most]
            widest = max(areas[i] for i in tied)
            return [next(i for i in tied if areas[i] == widest)]
        chosen, most_params = [], -1
        for i in sorted(feasible, key=lambda i: (-madds[i], -params[i], -areas[i])):
            if params[i] > most_params:
                chosen.append(i)
                most_params = params[i]
        return chosen

    def _smallest(self, block: Block) -> None:
        madds, params = block.madds, block.params
        least = min(madds)
        i = min((i for i, v in enumerate(madds) if v == least), key=params.__getitem__)
        c = self.smallest
        if c is None or (madds[i], params[i], block.alpha) < (c.madds, c.params, c.alpha):
            self.smallest = block.candidate(i)
