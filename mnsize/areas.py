"""The spatial sizes of every layer over the resolutions of a search, as
columns of areas (mnsize.sweep's dot products run over them), and the peak of
activations over those columns.

A layer's H x W depends only on the resolution and the strides before it, so
layers share a few columns: every layer after the same strides has the same
areas. The rule that gives each layer's column (a divisor of the input side)
is derived from the spec and checked against ``expand`` at probe sizes; where
it does not hold, each layer's sizes are taken from ``expand`` itself.
"""

from __future__ import annotations

import itertools
import sys
from array import array
from dataclasses import dataclass, field
from fractions import Fraction
from operator import add

from .bounds import MAX_SIDE
from .expand import Layer, expand
from .latency import round_up
from .spec import Spec


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
class Spatial:
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


def spatial_columns(spec: Spec, alpha: Fraction, classes: int | None, layers: tuple[Layer, ...],
             resolutions: list[tuple[int, int]]) -> Spatial:
    areas = [h * w for h, w in resolutions]
    divisors = _divisors(spec, alpha, classes, layers, resolutions)
    if divisors is not None:
        distinct = sorted({d for pair in divisors for d in pair})
        index = {d: i for i, d in enumerate(distinct)}
        columns = [areas if d == 1 else [1] * len(resolutions) if d == 0 else
                   [_side(h, d) * _side(w, d) for h, w in resolutions] for d in distinct]
        return Spatial(resolutions, areas, columns, [(index[i], index[o]) for i, o in divisors], divisors, None,
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
    return Spatial(resolutions, areas, [list(column) for column in found], where, None, hws,
                    found.get((1,) * len(resolutions)))


def _divisors(spec: Spec, alpha: Fraction, classes: int | None, layers: tuple[Layer, ...],
              resolutions: list[tuple[int, int]]) -> list[tuple[int, int]] | None:
    """Each layer's (input, output) side divisor, derived from the strides and
    checked against expand at PROBES and the resolutions' extremes; None when
    expand does not follow the rule."""
    if any(lay.padding is not None for lay in layers):
        return None  # explicit padding sizes a side by its own formula, and may refuse a small probe
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


def linear(constant: int, coefficients: dict[int, int], spatial: Spatial) -> list[int]:
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


class Peak:
    """The largest input + output of any layer, as a max of a few linear terms:
    layers with the same input and output columns whose channels another one
    matches or exceeds can never be the largest."""

    def __init__(self, layers: tuple[Layer, ...], spatial: Spatial) -> None:
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
        values = [linear(0, {i: scale * a} if i == o else {i: scale * a, o: scale * b}, self.spatial)
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
