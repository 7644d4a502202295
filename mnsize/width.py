"""Width rules: how a width multiplier alpha turns a table's channel count into
a real one.

A rule computes in one of two arithmetics. ``exact`` works in rational
arithmetic on the alpha the user typed (``Fraction("0.35")`` is exactly 7/20),
so no channel count is rounded by binary floating-point error: 100 x 29/100 is
exactly 29. ``float`` repeats what a reference implementation computes in IEEE
double precision, error included: torchvision's MobileNetV3 at width 0.58 sees
200 x 0.58 = 115.99999999999999 and rounds it to 112 channels where the exact
116 gives 120, and Keras's MobileNet truncates 100 x 0.29 = 28.999999999999996
to 28. A spec that follows a framework's code uses ``float`` so that it equals
that framework at every alpha; one that follows a paper uses ``exact``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from fractions import Fraction

RULES = ("floor", "divisible")
ARITHMETICS = ("exact", "float")
#: how a width given as a multiple ``t`` of a layer's input becomes whole
EXPANSIONS = ("nearest", "rule")


@dataclass(frozen=True)
class WidthRule:
    """A named channel-rounding rule.

    ``floor``: ``max(minimum, floor(c * alpha))``, the MobileNetV1 rule of
    Howard et al. 2017; TF-slim's implementation uses a minimum of 8 channels,
    Keras' none (minimum 0).

    ``divisible``: round ``c * alpha`` to the nearest multiple of ``divisor``
    (halves round up), at least ``divisor``, plus one more ``divisor`` when
    that falls below 90% of ``c * alpha``. This is the ``_make_divisible``
    helper of the TF-slim, torchvision and Keras MobileNetV2/V3 code. With
    ``truncate``, ``c * alpha`` is first truncated to a whole number, as
    Keras's MobileNetV2 blocks do (``int(filters * alpha)``).

    ``arithmetic`` is ``exact`` or ``float`` (the module's docstring).
    ``expansions`` says how a width given as ``t`` times the layer's input
    (already at alpha) is made whole: ``nearest`` (round, as torchvision's
    MobileNetV2 does) or ``rule`` (this rule's rounding at alpha 1, as
    Keras's MobileNetV3 sizes its expansions).
    """

    rule: str = "floor"
    minimum: int = 0
    divisor: int = 8
    arithmetic: str = "exact"
    truncate: bool = False
    expansions: str = "nearest"

    def apply(self, channels: int, alpha: Fraction) -> int:
        """``channels`` of the table at width multiplier ``alpha``."""
        if self.arithmetic == "float":
            return self._rounded(float(channels) * float(alpha))
        return self._rounded(Fraction(channels) * alpha)

    def expanded(self, c_in: int, t: Fraction) -> int:
        """The width ``t`` times ``c_in`` (a layer's input, already at alpha)."""
        if self.arithmetic == "float":
            scaled = float(c_in) * float(t)
        else:
            scaled = Fraction(c_in) * t
        if self.expansions == "rule":
            return self._rounded(scaled)
        return max(1, round(scaled))

    def _rounded(self, scaled: Fraction | float) -> int:
        if self.rule == "floor":
            return max(self.minimum, math.floor(scaled))
        if self.truncate:
            scaled = type(scaled)(math.floor(scaled))
        return make_divisible(scaled, self.divisor)

    def describe(self) -> str:
        if self.rule == "floor":
            text = f"floor (min {self.minimum})" if self.minimum else "floor"
        else:
            text = f"divisible by {self.divisor}" + (", truncated first" if self.truncate else "")
        return text + (", in floating point" if self.arithmetic == "float" else "")


def make_divisible(value: Fraction | float, divisor: int = 8) -> int:
    """Nearest multiple of ``divisor`` to ``value``, at least ``divisor``, never
    below 90% of ``value`` (the MobileNetV2 reference rule). A Fraction is
    rounded exactly; a float as the reference code does it, in doubles."""
    if isinstance(value, float):
        rounded = max(divisor, int(value + divisor / 2) // divisor * divisor)
        return rounded + divisor if rounded < 0.9 * value else rounded
    rounded = max(divisor, math.floor(value + Fraction(divisor, 2)) // divisor * divisor)
    if rounded < Fraction(9, 10) * value:
        rounded += divisor
    return rounded


#: what a squeeze-and-excite rule's width is a ratio of
SQUEEZE_OF = ("input", "expanded")


@dataclass(frozen=True)
class SqueezeRule:
    """How wide a squeeze-and-excite block squeezes (Hu et al. 2018), and its
    two activations.

    The squeezed width is ``max(minimum, make_divisible(floor(ratio x w),
    divisor))`` with ``w`` the block's input width (``of="input"``) or its
    expanded width (``of="expanded"``), both already at alpha. The defaults are
    torchvision's MobileNetV3 rule, make_divisible(expanded // 4, 8), with
    ReLU between the two 1x1 convs and a hard-sigmoid gate; EfficientNet's is
    ratio 1/4 of the input, divisor 1 (a plain floor, at least 1), SiLU and a
    sigmoid gate: max(1, input // 4).
    """

    ratio: Fraction = Fraction(1, 4)
    of: str = "expanded"
    divisor: int = 8
    minimum: int = 1
    act: str = "relu"
    gate: str = "hardsigmoid"

    def squeeze(self, c_in: int, expanded: int) -> int:
        width = c_in if self.of == "input" else expanded
        # make_divisible of a whole number to divisor 1 is the number itself (at least 1)
        return max(self.minimum, make_divisible(Fraction(math.floor(self.ratio * width)), self.divisor))
