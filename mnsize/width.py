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
