"""The search for the largest model within limits, and the bounds that keep
one search to seconds of work.

The search consumes the blocks mnsize.sweep yields one at a time and keeps
only what it reports: the counts, the best ``top``, the Pareto frontier and
the smallest candidate.
"""

from __future__ import annotations

import bisect
import heapq
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from .bounds import MAX_GRID_CELLS, MAX_LAYER_EVALUATIONS, MAX_LAYER_EXPANSIONS, MAX_PROFILED_LAYER_EXPANSIONS
from .errors import MnsizeError
from .expand import expand
from .metrics import OBJECTIVES, Limits
from .spec import Spec
from .sweep import Block, Candidate


# --------------------------------------------------------------------------- bounds


def check_work(specs: Iterable[Spec], alphas, resolutions, classes: int | None = None, profile=None,
               hint: str = "narrow the alphas or the resolutions") -> None:
    """Refuse, before any of it is done, a search bigger than a few seconds of
    work (the MAX_ bounds above)."""
    if not alphas or not resolutions:
        return
    layers = [len(expand(spec, alphas[0], (1, 1), classes, widths_only=True)) for spec in specs]
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


# --------------------------------------------------------------------------- the search


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


def fit(candidates: Iterable[Candidate] | Iterable[Block], limits: Limits, objective: str = "madds",
        top: int = 5) -> Fit:
    """The best ``top`` feasible candidates by ``objective``, the frontier of
    the feasible ones, and when none is feasible the smallest candidate. One
    pass over ``candidates`` (Candidates, or the Blocks ``blocks`` yields, the
    fast way), keeping only what the result holds."""
    if objective not in OBJECTIVES:
        raise ValueError(f"objective must be one of {', '.join(OBJECTIVES)}, got {objective!r}")
    search = _Search(limits, objective, top)
    for block in _as_blocks(candidates):
        search.add(block)
    return search.result()


def fit_specs(specs: list[Spec], alphas, resolutions, limits: Limits, objective: str = "madds", top: int = 5,
              classes: int | None = None, dtype: str = "fp32", convention=None, profile=None,
              hint: str = "narrow the alphas or the resolutions") -> Fit:
    """``fit`` over every alpha x resolution of each spec, with the published
    top-1 where a checkpoint exists: refused first when the work is out of
    bounds (check_work), then one pass over the blocks mnsize.sweep yields."""
    from .published import top1_table
    from .sweep import blocks

    check_work(specs, alphas, resolutions, classes, profile, hint=hint)
    return fit((block for spec in specs
                for block in blocks(spec, alphas, resolutions, classes, dtype, top1_table(spec.name), convention,
                                    profile)), limits, objective, top)


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
    def __init__(self, limits: Limits, objective: str, top: int) -> None:
        self.limits = limits.items()
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
