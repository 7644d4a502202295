"""Latency prediction from a device profile: no torch, plain arithmetic.

A profile (written by `mnsize profile`, measured on the device) holds one
coefficient per feature of a layer:

    t_layer = a * padded mult-adds of convolutions, pointwise and fc layers
            + b * bytes of activations those layers move
            + w * bytes of their weights
            + c * bytes depthwise convolutions move
            + d * bytes pooling and squeeze-and-excite move
            + e * elements activations and residual adds pass over
            + f * module calls                   (a fixed cost per PyTorch call)
    t_network = sum of t_layer + g

Why this shape: on a CPU a pointwise or full convolution is bound by its
arithmetic, a depthwise one, pooling and the element-wise passes by the
memory they move; widths that are not multiples of 8 waste vector lanes, so
mult-adds and bytes count channels rounded up to 8 (int(32 x 0.35) = 11
channels cost like 16). The coefficients are fitted to whole networks timed
on the device rather than to single layers: summed single-layer timings
over-predicted small networks by 30% here, the network fit absorbs what
isolated layers miss (caches between layers, the framework's own loop).
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from .errors import MnsizeError, show
from .expand import Layer, elements
from .yamlio import load_yaml, read_text

PROFILE_FORMAT = "mnsize-profile/1"
FEATURES = ("compute_madds", "compute_bytes", "weight_bytes", "depthwise_bytes", "other_bytes", "elementwise",
            "calls")
ELEMENTWISE_ACTS = ("relu", "relu6", "hardswish")


def _up8(channels: int) -> int:
    return -(-channels // 8) * 8


def layer_features(layer: Layer, madds: int, params: int) -> tuple[float, ...]:
    """The features of one layer (a Report row's layer, mult-adds and params)."""
    values = dict.fromkeys(FEATURES, 0.0)
    if layer.kind == "dropout":
        return tuple(values.values())
    c_in, c_out = layer.in_shape[0], layer.out_shape[0]
    lanes = _up8(c_out) / c_out
    moved = 4.0 * (elements(layer.in_shape) + elements(layer.out_shape) + params) * lanes
    if layer.kind in ("conv", "pw", "fc"):
        values["compute_madds"] = madds * (_up8(c_in) * _up8(c_out)) / (c_in * c_out)
        values["compute_bytes"] = 4.0 * (elements(layer.in_shape) + elements(layer.out_shape)) * lanes
        values["weight_bytes"] = 4.0 * params
    elif layer.kind == "dw":
        values["depthwise_bytes"] = moved
    else:  # avgpool, se
        values["other_bytes"] = moved
    if layer.kind != "se" and layer.act in ELEMENTWISE_ACTS:
        values["elementwise"] += elements(layer.out_shape)
    if layer.residual:
        values["elementwise"] += 1.5 * elements(layer.out_shape)
    values["calls"] = module_calls(layer)
    return tuple(values.values())


def module_calls(layer: Layer) -> float:
    """How many PyTorch module calls the layer costs in the model mnsize builds
    (mnsize.nn): each call has a fixed cost in eager mode, whatever it computes."""
    if layer.kind in ("conv", "dw", "pw"):
        calls = 2 + (layer.act != "none")          # ConvBNAct, conv, activation (BatchNorm folded)
    elif layer.kind == "se":
        calls = 6                                   # the block, pool, conv, ReLU, conv, hard-sigmoid
    elif layer.kind == "fc":
        calls = 3 + (layer.act != "none")          # Classifier, flatten, linear, activation
    else:
        calls = 1                                   # pooling
    if layer.residual or layer.name.endswith((".pw", ".project")):
        calls += 1                                  # the block's container
    return float(calls)


def report_features(report) -> tuple[float, ...]:
    """Summed features of a network, plus the constant term."""
    totals = [0.0] * len(FEATURES)
    for row in report.rows:
        for i, value in enumerate(layer_features(row.layer, row.madds, row.params)):
            totals[i] += value
    return (*totals, 1.0)


@dataclass(frozen=True)
class Profile:
    path: str
    device: dict
    coefficients: dict[str, float]   # ms per unit of each feature
    offset_ms: float
    error: dict

    def layer_ms(self, layer: Layer, madds: int, params: int) -> float:
        return sum(self.coefficients[name] * value
                   for name, value in zip(FEATURES, layer_features(layer, madds, params)))

    def predict(self, report) -> tuple[float, list[tuple[str, float]]]:
        """(network ms, [(layer name, ms)]) for a Report (mnsize.costs) of the
        network as deployed (BatchNorm folded: mnsize.expand.deployed)."""
        per_layer = [(row.layer.name, self.layer_ms(row.layer, row.madds, row.params)) for row in report.rows]
        return self.offset_ms + sum(ms for _, ms in per_layer), per_layer


def load_profile(path: str) -> Profile:
    """Read and validate a profile; every problem is one MnsizeError."""
    text = read_text(path, path)
    data, _ = load_yaml(text, path)

    def bad(message: str) -> MnsizeError:
        return MnsizeError(f"{path}: not a usable latency profile: {message}")

    if not isinstance(data, dict):
        raise bad(f"expected a mapping, got {show(data)}")
    if data.get("format") != PROFILE_FORMAT:
        raise bad(f"expected format {PROFILE_FORMAT}, got {show(data.get('format'))} (write one with mnsize profile)")
    model = data.get("model")
    if not isinstance(model, dict) or not isinstance(model.get("ms_per"), dict):
        raise bad("missing model.ms_per")
    coefficients = {}
    for name in FEATURES:
        value = model["ms_per"].get(name)
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value < 1e3:
            raise bad(f"model.ms_per.{name} must be a number from 0 to 1000, got {show(value)}")
        coefficients[name] = float(value)
    offset = model.get("offset_ms")
    if isinstance(offset, bool) or not isinstance(offset, (int, float)) or not -1e3 < offset < 1e3:
        raise bad(f"model.offset_ms must be a number between -1000 and 1000, got {show(offset)}")
    device = data.get("device") if isinstance(data.get("device"), dict) else {}
    error = data.get("error") if isinstance(data.get("error"), dict) else {}
    return Profile(os.fspath(path), device, coefficients, float(offset), error)
