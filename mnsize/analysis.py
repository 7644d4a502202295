"""Analyses of a Report after the MobileNet paper (Howard et al. 2017,
arXiv:1704.04861): the mult-adds and parameters per layer type of its Table 2,
and the comparison of section 3.1 between each depthwise separable pair and the
standard convolution it replaces."""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction

from .costs import Report, Row, conv_cost
from .expand import Layer


def kind_label(layer: Layer) -> str:
    """The layer's category, after the rows of the paper's Table 2: 'conv KxK'
    for a full or pointwise convolution ('conv 1x1', 'conv 3x3'), 'dw KxK' for
    a depthwise one ('dw 3x3'), any other kind by its name ('fc', 'avgpool',
    'se', 'dropout')."""
    if layer.kind == "dw":
        return f"dw {layer.kernel}x{layer.kernel}"
    if layer.kind in ("conv", "pw"):
        return f"conv {layer.kernel}x{layer.kernel}"
    return layer.kind


@dataclass(frozen=True)
class KindRow:
    kind: str
    layers: int
    madds: int
    params: int


def by_kind(report: Report) -> tuple[KindRow, ...]:
    """Mult-adds and parameters per kind of layer, largest share first."""
    groups: dict[str, list[Row]] = {}
    for row in report.rows:
        groups.setdefault(kind_label(row.layer), []).append(row)
    rows = [KindRow(kind, len(rs), sum(r.madds for r in rs), sum(r.params for r in rs)) for kind, rs in groups.items()]
    return tuple(sorted(rows, key=lambda k: (-k.madds, -k.params)))


@dataclass(frozen=True)
class SeparablePair:
    """A depthwise layer followed by a pointwise one, against the standard
    K x K convolution with the same input and output. With M input and N
    output channels and P output positions, their mult-adds are
    K^2*M*P + M*N*P against K^2*M*N*P, so the ratio is exactly 1/N + 1/K^2,
    as section 3.1 of the paper derives."""

    dw: Row
    pw: Row
    standard_madds: int
    standard_params: int

    @property
    def madds(self) -> int:
        return self.dw.madds + self.pw.madds

    @property
    def params(self) -> int:
        return self.dw.params + self.pw.params

    @property
    def ratio(self) -> Fraction:
        """separable / standard mult-adds."""
        return Fraction(self.madds, self.standard_madds)

    @property
    def formula(self) -> Fraction:
        """1/N + 1/K^2."""
        return Fraction(1, self.pw.layer.out_shape[0]) + Fraction(1, self.dw.layer.kernel ** 2)


@dataclass(frozen=True)
class StandardComparison:
    pairs: tuple[SeparablePair, ...]
    madds: int             # the network as it is
    params: int
    standard_madds: int    # every separable pair replaced by a standard conv
    standard_params: int


def standard_comparison(report: Report) -> StandardComparison:
    """Every depthwise layer directly followed by a stride-1 pointwise one,
    set against the standard convolution from the depthwise layer's input to
    the pointwise layer's output (with the pointwise layer's bias, BatchNorm
    and activation), and the network's totals with each such pair replaced."""
    pairs = []
    for dw, pw in zip(report.rows, report.rows[1:]):
        if dw.layer.kind == "dw" and pw.layer.kind == "pw" and pw.layer.stride == 1:
            standard = Layer(
                index=0, name=dw.layer.block, block=dw.layer.block, kind="conv", in_shape=dw.layer.in_shape,
                out_shape=pw.layer.out_shape, kernel=dw.layer.kernel, stride=dw.layer.stride, groups=1,
                bias=pw.layer.bias, bn=pw.layer.bn, act=pw.layer.act, position=dw.layer.position)
            cost = conv_cost(standard)
            pairs.append(SeparablePair(dw, pw, cost.madds, cost.params))
    return StandardComparison(
        pairs=tuple(pairs),
        madds=report.madds,
        params=report.params,
        standard_madds=report.madds + sum(p.standard_madds - p.madds for p in pairs),
        standard_params=report.params + sum(p.standard_params - p.params for p in pairs),
    )
