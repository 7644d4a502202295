"""The four Keras specs against keras.applications' MobileNets themselves, at
widths and input sizes drawn at random (a fixed seed): odd sides and
non-square inputs included, every configuration equal in parameters
(count_params(), BatchNorm's four per channel) and mult-adds, layer by layer.

Every configuration is built once per session, in up to two worker processes
(tests/keras_models.py); none is called or exported.
"""

from __future__ import annotations

import random
from typing import NamedTuple

import pytest

from mnsize import count, expand, load_spec
from mnsize.conventions import CONVENTIONS

from . import keras_models
from .keras_models import SPECS, config_id


class Family(NamedTuple):
    builtin: str  # the torchvision-shaped built-in of the same network
    alphas: tuple[int, int]  # the α drawn, in hundredths: every layer keeps a channel


FAMILIES = {
    "MobileNet": Family("mobilenet_v1", (10, 160)),  # int(32 α) >= 1
    "MobileNetV2": Family("mobilenet_v2", (20, 160)),
    "MobileNetV3Large": Family("mobilenet_v3_large", (20, 160)),
    "MobileNetV3Small": Family("mobilenet_v3_small", (20, 160)),
}
SEED = 20171704
DRAWS = 20
SIDES = (32, 320)  # from Keras's smallest input side

#: keras.applications as Keras 3.15 builds them (weights=None, 1000 classes): count_params()
KERAS_PARAMS = {
    ("MobileNetV3Large", "0.75", (224, 224)): 4_012_616,
    ("MobileNetV3Small", "0.75", (224, 224)): 2_051_552,
    ("MobileNet", "0.1", (224, 224)): 142_881,  # a 3-wide stem: no 8-channel floor
    ("MobileNetV2", "0.28", (224, 224)): 1_571_416,  # int(c α) before rounding to a multiple of 8
}
#: ... and keras_models.keras_madds of them
KERAS_MADDS = {
    ("MobileNetV3Large", "0.75", (224, 224)): 154_560_624,
    ("MobileNetV3Small", "0.75", (224, 224)): 43_399_344,
    ("MobileNet", "1.0", (225, 225)): 569_460_352,  # pad-after then VALID: the last maps 7x7, not 8x8
}


def draw(family: str, rng: random.Random) -> list[tuple[str, str, tuple[int, int]]]:
    """DRAWS configurations of ``family``: α a short decimal ("0.37"), every
    fifth input square, the others with their two sides drawn independently."""
    low, high = FAMILIES[family].alphas
    configs = []
    for i in range(DRAWS):
        alpha = f"{rng.randint(low, high) / 100:g}"
        height = rng.randint(*SIDES)
        width = height if i % 5 == 0 else rng.randint(*SIDES)
        configs.append((family, alpha, (height, width)))
    return configs


def _drawn() -> dict[str, list[tuple[str, str, tuple[int, int]]]]:
    rng = random.Random(SEED)
    return {family: draw(family, rng) for family in FAMILIES}


DRAWN = _drawn()
#: the draws, α 1.0 at 224x224 and the configurations of the figures above, each once
CONFIGS = list(dict.fromkeys(
    config for family in FAMILIES
    for config in [*DRAWN[family], (family, "1.0", (224, 224)),
                   *(c for c in {**KERAS_PARAMS, **KERAS_MADDS} if c[0] == family)]))


def mnsize_counts(model: str, alpha: str, resolution: tuple[int, int]):
    return count(expand(load_spec(model), alpha, resolution), CONVENTIONS["keras"])


def mnsize_shapes(family: str, alpha: str, resolution: tuple[int, int]) -> list[tuple[str, int, int, int]]:
    """(name, C, H, W) of every weighted layer of the Keras spec, in Keras's
    order: squeeze-and-excite as its two 1x1 convs on the pooled map."""
    shapes = []
    for layer in expand(load_spec(SPECS[family]), alpha, resolution):
        if layer.kind == "se":
            shapes += [(f"{layer.name}.squeeze", layer.squeeze, 1, 1),
                       (f"{layer.name}.excite", layer.out_shape[0], 1, 1)]
        elif layer.kind in ("conv", "dw", "pw", "fc"):
            shapes.append((layer.name, *layer.out_shape))
    return shapes


@pytest.fixture(scope="session")
def keras_counts() -> dict[str, keras_models.Measured]:
    return keras_models.measure_all(CONFIGS)


# --------------------------------------------------------------------------- the draw and the figures, no Keras


def test_every_family_draws_odd_non_square_and_square_inputs():
    for family, (_, (low, high)) in FAMILIES.items():
        sides = [resolution for _, _, resolution in DRAWN[family]]
        assert any(h != w for h, w in sides) and any(h == w for h, w in sides)
        assert any(h % 2 and w % 2 and h != w for h, w in sides)  # both sides odd
        assert any(h % 2 != w % 2 for h, w in sides)  # one side odd
        assert all(SIDES[0] <= side <= SIDES[1] for h, w in sides for side in (h, w))
        alphas = [alpha for _, alpha, _ in DRAWN[family]]
        assert all(len(alpha) <= 4 and low <= round(float(alpha) * 100) <= high for alpha in alphas)
        assert len(set(alphas)) >= DRAWS // 2 and any(float(alpha) > 1 for alpha in alphas)
        assert (family, "1.0", (224, 224)) in CONFIGS


def test_the_keras_specs_give_the_figures_keras_gives():
    for (family, alpha, resolution), params in KERAS_PARAMS.items():
        assert mnsize_counts(SPECS[family], alpha, resolution).params == params, (family, alpha)
    for (family, alpha, resolution), madds in KERAS_MADDS.items():
        assert mnsize_counts(SPECS[family], alpha, resolution).madds == madds, (family, alpha)


def test_the_torchvision_shaped_builtins_give_other_figures():
    """Why the Keras specs exist: at each of these configurations the built-in
    of the same name without _keras builds a different network from Keras's."""
    for (family, alpha, resolution), params in KERAS_PARAMS.items():
        assert mnsize_counts(FAMILIES[family].builtin, alpha, resolution).params != params, (family, alpha)
    for (family, alpha, resolution), madds in KERAS_MADDS.items():
        assert mnsize_counts(FAMILIES[family].builtin, alpha, resolution).madds != madds, (family, alpha)


# --------------------------------------------------------------------------- Keras itself


def test_keras_gives_the_figures(keras_counts):
    assert {config: keras_counts[config_id(*config)].count_params for config in KERAS_PARAMS} == KERAS_PARAMS
    assert {config: keras_counts[config_id(*config)].madds for config in KERAS_MADDS} == KERAS_MADDS


@pytest.mark.parametrize("config", CONFIGS, ids=[config_id(*config) for config in CONFIGS])
def test_the_keras_spec_counts_what_keras_counts(keras_counts, config):
    family, alpha, resolution = config
    measured = keras_counts[config_id(*config)]
    assert measured.count_params == measured.params  # no weighted preprocessing in these four
    report = mnsize_counts(SPECS[family], alpha, resolution)
    assert (report.params, report.madds) == (measured.count_params, measured.madds)


@pytest.mark.parametrize("config", CONFIGS, ids=[config_id(*config) for config in CONFIGS])
def test_the_keras_spec_has_keras_layer_shapes(keras_counts, config):
    """Every weighted layer's output width, height and width, in order."""
    keras_side = keras_counts[config_id(*config)].shapes
    mnsize_side = mnsize_shapes(*config)
    first = next((i for i, (k, m) in enumerate(zip(keras_side, mnsize_side)) if k[1:] != m[1:]), None)
    assert first is None, f"Keras {keras_side[first]} but mnsize {mnsize_side[first]}"
    assert len(keras_side) == len(mnsize_side)
