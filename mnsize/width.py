"""Width rules: how a width multiplier alpha turns a table's channel count into
a real one.

Every rule works in exact rational arithmetic on the alpha the user typed
(``Fraction("0.35")`` is exactly 7/20), so no channel count is ever rounded
down by binary floating-point error: ``int(100 * 0.29)`` gives 28 in floats
(0.29 is stored as 0.28999...), where 100 x 29/100 is exactly 29.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from fractions import Fraction

RULES = ("floor", "divisible")


@dataclass(frozen=True)
class WidthRule:
    """A named channel-rounding rule.

    ``floor``: ``max(minimum, floor(c * alpha))``, the MobileNetV1 rule of
    Howard et al. 2017; TF-slim's implementation uses a minimum of 8 channels,
    Keras' none (minimum 0).

    ``divisible``: round ``c * alpha`` to the nearest multiple of ``divisor``
    (halves round up), at least ``divisor``, plus one more ``divisor`` when
    that falls below 90% of ``c * alpha``. This is the ``_make_divisible``
    helper of the TF-slim and torchvision MobileNetV2/V3 code.
    """

    rule: str = "floor"
    minimum: int = 0
    divisor: int = 8

    def apply(self, channels: int, alpha: Fraction) -> int:
        scaled = Fraction(channels) * alpha
        if self.rule == "floor":
            return max(self.minimum, math.floor(scaled))
        return make_divisible(scaled, self.divisor)

    def describe(self) -> str:
        if self.rule == "floor":
            return f"floor (min {self.minimum})" if self.minimum else "floor"
        return f"divisible by {self.divisor}"


def make_divisible(value: Fraction, divisor: int = 8) -> int:
    """Nearest multiple of ``divisor`` to ``value``, at least ``divisor``, never
    below 90% of ``value`` (the MobileNetV2 reference rule, in exact arithmetic)."""
    rounded = max(divisor, math.floor(value + Fraction(divisor, 2)) // divisor * divisor)
    if rounded < Fraction(9, 10) * value:
        rounded += divisor
    return rounded
