"""Latency prediction from a device profile: no torch, plain arithmetic.

A profile (written by `mnsize profile`, measured on the device) holds one
coefficient per feature of a layer. For eager PyTorch:

    t_layer = a  * padded mult-adds of convolutions, pointwise and fc layers
            + b  * bytes of activations those layers move
            + w  * bytes of their weights
            + c1 * bytes moved by depthwise convolutions whose width is a
                   multiple of the vector lanes
            + c2 * bytes moved by the other depthwise convolutions
            + d  * bytes pooling and squeeze-and-excite move
            + e  * elements activations and residual adds pass over
            + f1 * module calls of depthwise layers   (a fixed cost per call)
            + f2 * other module calls
    t_network = sum of t_layer + g

Why this shape: on a CPU a pointwise or full convolution is a matrix product
bound by its arithmetic; a depthwise one, pooling and the element-wise passes
are bound by the memory they move. Matrix products waste work on ragged edges,
so their mult-adds count channels rounded up to 8 (int(32 x 0.35) = 11
channels cost like 16) and output positions rounded up to the vector lanes (16
fp32 lanes with AVX-512, 8 otherwise: a 7x7 map costs like 64 positions). A
depthwise convolution whose width is not a multiple of the lanes takes a
slower path than one whose width is, hence two costs per byte; and the
library call that runs a depthwise layer has a larger fixed cost than an
element-wise call, hence a cost per call of its own. The coefficients are
fitted to whole networks timed on the device, not to single layers, so that
the fit takes in what isolated layers miss (caches between layers, the
framework's own loop). The measurements behind these choices are in
docs/latency.md.

A profile is made for one runtime (torch, onnxruntime, openvino) and records
it. A runtime that runs a whole graph from its own compiled plan
(mnsize.runtimes.has_call_overhead false) pays no Python dispatch per module,
so its model has no f1, f2 (CALL_FEATURES), and has instead what such a
runtime's own plan costs (COMPILED_FEATURES):

    t_layer = a  * mult-adds of convolutions in the blocked channel layout,
                   channels padded to whole blocks of lanes
            + a2 * mult-adds of the convolutions left in plain layout
            + b, w, d, e as above
            + v  * bytes of the fc layer's weights (a product with one row
                   of activations: it streams its weights from memory)
            + c1 * bytes moved by depthwise convolutions in the blocked
                   layout, padded to whole blocks
            + c2 * bytes moved by the depthwise convolutions left in plain
                   layout
            + c3 * channels of those plain-layout depthwise convolutions
                   (a fixed cost per channel: run channel by channel)
            + o  * operators the runtime runs (a fixed cost per operator)
    t_network = sum of t_layer + g
              + s * bytes of the network's weights beyond what the caches
                    hold between inferences (the first cached_weights_mib
                    MiB: a choice the fit makes, CACHE_CHOICES_MIB), shared
                    out among the layers by their weights

A compiled CPU runtime moves a convolution into its blocked layout (channels
in blocks of the lanes, zero-padded) when its input channels are a multiple
of BLOCK_ALIGNMENT or fewer than a block (an image's 3), a depthwise one when
its channels are a multiple; the others run in plain layout at a rate of
their own, much lower for depthwise ones, which run channel by channel and
so pay a fixed cost per channel beside the bytes they move. Output positions
are not padded: the blocked kernels run along a row of positions. A compiled
runtime's profile made before the cost per channel was fitted is read with it
at 0 (LATER_COMPILED_FEATURES): its other costs took that cost in when they
were fitted, and it predicts as it did. A profile of format
mnsize-profile/2 predates runtimes and is read as one made for torch.

A profile's quality is its error on calibration networks held out of the fit:
`poor` when fewer than QUALITY_WITHIN_10PCT of them are predicted within
±10%; such a profile is still usable, and the commands that use it say so.
"""

from __future__ import annotations

import math
import os
import re
from dataclasses import dataclass

from .bounds import MAX_CORES, MAX_NETWORKS, MAX_THREADS
from .errors import MnsizeError, show
from .expand import Layer, elements
from .yamlio import load_yaml, read_text

PROFILE_FORMAT = "mnsize-profile/3"
#: the format before runtimes were recorded: read as a profile made for torch
TORCH_ONLY_FORMAT = "mnsize-profile/2"
FEATURES = ("compute_madds", "compute_unaligned_madds", "compute_bytes", "weight_bytes", "fc_weight_bytes",
            "depthwise_bytes", "depthwise_unaligned_bytes", "depthwise_unaligned_channels", "other_bytes",
            "elementwise", "operators", "calls", "depthwise_calls")
CALL_FEATURES = ("calls", "depthwise_calls")
#: the features only a compiled-graph runtime's model has
COMPILED_FEATURES = ("compute_unaligned_madds", "fc_weight_bytes", "depthwise_unaligned_channels", "operators")
#: compiled-runtime costs a profile may lack, read as 0: profiles made before they were fitted predict as they did
LATER_COMPILED_FEATURES = ("depthwise_unaligned_channels",)
#: a compiled runtime runs a convolution in its blocked layout when its input channels (a depthwise one's
#: channels) are a multiple of this: measured with onnxruntime's CPU provider, whose blocked convolutions take
#: channels in multiples of 4 and pad them to the block (docs/latency.md)
BLOCK_ALIGNMENT = 4
#: operators a compiled runtime runs for a squeeze-and-excite block: the pool, two 1x1 convolutions and the
#: multiply, and three layout changes around the multiply, which the blocked layout does not take
SE_OPERATORS = 7
#: a compiled runtime's network-wide cost: bytes of weights beyond those its caches hold between inferences
SPILL_FEATURE = "spilled_weight_bytes"
#: the cache sizes (MiB of weights held between inferences) a compiled runtime's fit chooses from
CACHE_CHOICES_MIB = (4, 6, 8, 12, 16, 24, 32, 48)
#: the features eager PyTorch's model counts per output position, which mnsize.sweep pads to the lanes itself
POSITION_FEATURES = ("compute_madds",)
#: a profile is good when at least this share of its held-out networks is predicted within ±10%
QUALITY_WITHIN_10PCT = 0.8
#: seconds a calibration takes by default, the whole run (mnsize.calibrate)
CALIBRATION_SECONDS = 50
MIN_PREDICTION_MS = 0.001
ELEMENTWISE_ACTS = ("relu", "relu6", "hardswish")


def model_features(call_overhead: bool) -> tuple[str, ...]:
    """The features a profile fits and predicts with: for a runtime that pays
    a cost per module call (mnsize.runtimes.has_call_overhead), the per-call
    ones and not COMPILED_FEATURES; for a compiled graph, the other way round."""
    left_out = COMPILED_FEATURES if call_overhead else CALL_FEATURES
    return tuple(f for f in FEATURES if f not in left_out)


def quality_of(within_10pct: float) -> str:
    return "good" if within_10pct >= QUALITY_WITHIN_10PCT else "poor"


def round_up(value: int, multiple: int) -> int:
    return -(-value // multiple) * multiple


def blocked(layer: Layer, lanes: int) -> bool:
    """Whether a compiled runtime runs a convolution in its blocked channel
    layout (BLOCK_ALIGNMENT): a depthwise one by its channels, any other by
    its input channels, unless they are fewer than a block of ``lanes`` (as
    an image's 3), which such a convolution reads as they are."""
    c_in = layer.in_shape[0]
    if layer.kind == "dw":
        return c_in % BLOCK_ALIGNMENT == 0
    return c_in % BLOCK_ALIGNMENT == 0 or c_in < lanes


def layer_features(layer: Layer, madds: int, params: int, lanes: int,
                   pad_positions: bool = True, compiled: bool = False) -> tuple[float, ...]:
    """The features of one layer (a Report row's layer, mult-adds and params)
    on a device with ``lanes`` fp32 vector lanes, as eager PyTorch's model
    counts them or, with ``compiled``, a compiled runtime's (the module
    docstring). With ``pad_positions`` false, eager PyTorch's compute_madds
    counts output positions as they are (mnsize.sweep pads them itself, per
    resolution); a compiled runtime's are never padded."""
    if compiled:
        return _compiled_features(layer, madds, params, lanes)
    values = dict.fromkeys(FEATURES, 0.0)
    if layer.kind == "dropout":
        return tuple(values.values())
    c_in, c_out = layer.in_shape[0], layer.out_shape[0]
    spare = round_up(c_out, 8) / c_out
    moved = 4.0 * (elements(layer.in_shape) + elements(layer.out_shape) + params) * spare
    if layer.kind in ("conv", "pw", "fc"):
        positions = layer.out_shape[1] * layer.out_shape[2]
        values["compute_madds"] = (madds * (round_up(c_in, 8) * round_up(c_out, 8)) / (c_in * c_out)
                                   * (round_up(positions, lanes) / positions if pad_positions else 1))
        values["compute_bytes"] = 4.0 * (elements(layer.in_shape) + elements(layer.out_shape)) * spare
        values["weight_bytes"] = 4.0 * params
    elif layer.kind == "dw":
        values["depthwise_bytes" if c_out % lanes == 0 else "depthwise_unaligned_bytes"] = moved
    else:  # avgpool, se
        values["other_bytes"] = moved
    _elementwise(values, layer)
    values["depthwise_calls" if layer.kind == "dw" else "calls"] = module_calls(layer)
    return tuple(values.values())


def _compiled_features(layer: Layer, madds: int, params: int, lanes: int) -> tuple[float, ...]:
    values = dict.fromkeys(FEATURES, 0.0)
    if layer.kind == "dropout":
        return tuple(values.values())
    c_in, c_out = layer.in_shape[0], layer.out_shape[0]
    moved = 4.0 * (elements(layer.in_shape) + elements(layer.out_shape) + params)
    if layer.kind in ("conv", "pw"):
        if blocked(layer, lanes):
            padded_in = round_up(c_in, lanes) if c_in >= lanes else c_in
            values["compute_madds"] = madds * padded_in * round_up(c_out, lanes) / (c_in * c_out)
        else:
            values["compute_unaligned_madds"] = float(madds)
        values["compute_bytes"] = 4.0 * (elements(layer.in_shape) + elements(layer.out_shape))
        values["weight_bytes"] = 4.0 * params
    elif layer.kind == "fc":
        values["compute_bytes"] = 4.0 * (elements(layer.in_shape) + elements(layer.out_shape))
        values["fc_weight_bytes"] = 4.0 * params
    elif layer.kind == "dw":
        if blocked(layer, lanes):
            values["depthwise_bytes"] = moved * round_up(c_out, lanes) / c_out
        else:
            values["depthwise_unaligned_bytes"] = moved
            values["depthwise_unaligned_channels"] = float(c_out)
    else:  # avgpool, se
        values["other_bytes"] = moved
    _elementwise(values, layer)
    values["operators"] = graph_operators(layer)
    return tuple(values.values())


def _elementwise(values: dict, layer: Layer) -> None:
    if layer.kind != "se" and layer.act in ELEMENTWISE_ACTS:
        values["elementwise"] += elements(layer.out_shape)
    if layer.residual:  # an add moves 3 tensors (2 read, 1 written), an in-place activation 2: 1.5 times as much
        values["elementwise"] += 1.5 * elements(layer.out_shape)


def graph_operators(layer: Layer) -> float:
    """How many operators a compiled runtime runs for the layer, with
    activations and residual adds fused into the convolution before them:
    each costs a fixed dispatch, whatever it computes."""
    if layer.kind == "se":
        return float(SE_OPERATORS)
    if layer.kind == "fc":
        return 2.0 + (layer.act != "none")          # flatten, the product, an activation
    return 1.0


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


def weight_bytes(report) -> float:
    """Bytes of a network's weights, fp32 (a Report of it, as deployed)."""
    return 4.0 * sum(row.params for row in report.rows)


def spilled(weights: float, cache_mib: float) -> float:
    """Bytes of ``weights`` beyond caches that hold ``cache_mib`` MiB of them."""
    return max(0.0, weights - cache_mib * 2**20)


def report_features(report, lanes: int, compiled: bool = False) -> tuple[float, ...]:
    """Summed features of a network, plus the constant term."""
    totals = [0.0] * len(FEATURES)
    for row in report.rows:
        for i, value in enumerate(layer_features(row.layer, row.madds, row.params, lanes, compiled=compiled)):
            totals[i] += value
    return (*totals, 1.0)


@dataclass(frozen=True)
class Profile:
    """A device's latency model, as load_profile read and checked it."""

    path: str                        # the file it was read from, as given: named in errors
    device: dict
    coefficients: dict[str, float]   # ms per unit of each feature the runtime's model has (model_features)
    offset_ms: float
    lanes: int                       # fp32 vector lanes of the device
    error: dict
    runtime: str = "torch"
    runtime_version: str = ""
    quality: str | None = None       # good or poor; None where the profile does not say (format 2 without figures)
    spill_ms_per_byte: float = 0.0   # a compiled runtime's ms per byte of weights beyond cached_weights_mib
    cached_weights_mib: float = 0.0

    def quality_warning(self) -> str | None:
        """One line for a poor profile, None for any other."""
        if self.quality != "poor":
            return None
        within = self.error.get("held_out_within_10pct")
        figures = (f": {100 * within:.0f}% of {self.error.get('held_out', '?')} held-out networks within ±10%"
                   if within is not None else "")
        median = self.error.get("held_out_median_error_pct")
        figures += f", median error {median:g}%" if median is not None else ""
        return (f"{self.path}: a poor latency profile{figures} (under {100 * QUALITY_WITHIN_10PCT:.0f}%); "
                "its predictions may be far off")

    def microseconds(self, predicted_ms: float) -> int:
        """A prediction in whole microseconds, rounded up. A prediction under
        one microsecond comes from a profile whose costs are all but zero (no
        network of dozens of layers runs that fast on any device): refused,
        so that a tampered profile cannot pass any latency budget."""
        if not (predicted_ms >= MIN_PREDICTION_MS and math.isfinite(predicted_ms)):
            raise MnsizeError(f"{self.path}: not a usable latency profile: it predicts {predicted_ms:g} ms for a "
                              f"network, under the {MIN_PREDICTION_MS * 1000:g} µs any real one takes")
        return math.ceil(predicted_ms * 1000)

    @property
    def compiled(self) -> bool:
        """Whether the model is a compiled runtime's (no per-call costs)."""
        return not any(name in self.coefficients for name in CALL_FEATURES)

    @property
    def position_features(self) -> tuple[str, ...]:
        """The features counted per output position padded to the lanes (none
        in a compiled runtime's model)."""
        return () if self.compiled else POSITION_FEATURES

    def layer_ms(self, layer: Layer, madds: int, params: int, pad_positions: bool = True,
                 only: tuple[str, ...] | None = None) -> float:
        """Predicted ms of one layer; ``only``: of these features alone."""
        return sum(self.coefficients[name] * value
                   for name, value in zip(FEATURES, layer_features(layer, madds, params, self.lanes, pad_positions,
                                                                   self.compiled))
                   if (only is None or name in only) and name in self.coefficients)

    def spill_ms(self, weights: float) -> float:
        """Predicted ms of a network's weights beyond the caches (0 in a model without the cost)."""
        return self.spill_ms_per_byte * spilled(weights, self.cached_weights_mib)

    def predict(self, report) -> tuple[float, list[tuple[str, float]]]:
        """(network ms, [(layer name, ms)]) for a Report (mnsize.costs) of the
        network as deployed (BatchNorm folded: mnsize.expand.deployed); the
        cost of weights beyond the caches is shared out by the layers' weights."""
        weights = weight_bytes(report)
        spill = self.spill_ms(weights) / weights if weights else 0.0
        per_layer = [(row.layer.name, self.layer_ms(row.layer, row.madds, row.params) + spill * 4.0 * row.params)
                     for row in report.rows]
        return self.offset_ms + sum(ms for _, ms in per_layer), per_layer


#: what a profile's device and error blocks may say, by type; each is optional
DEVICE_TEXT = ("cpu", "machine", "torch", "python", "date", "allocator")
ERROR_COUNTS = ("networks", "held_out")
ERROR_SHARES = ("held_out_median_error_pct", "held_out_within_10pct", "largest_spread_pct")
QUALITIES = ("good", "poor")


def load_profile(path: str) -> Profile:
    """Read and validate a profile; every problem is one MnsizeError.

    The coefficients and the offset are what the calibration fits: finite and
    never negative (a negative offset would predict a negative time that
    passes any budget), and not all zero (a prediction of 0 ms passes any
    budget too). The device's thread count is used to time on it again, so
    it is held to what `mnsize profile --threads` accepts."""
    text = read_text(path, path)
    data, _ = load_yaml(text, path)

    def bad(message: str) -> MnsizeError:
        return MnsizeError(f"{path}: not a usable latency profile: {message}")

    def number(value: object) -> bool:
        return not isinstance(value, bool) and isinstance(value, (int, float)) and math.isfinite(value)

    def whole(value: object, low: int, high: int) -> bool:
        return not isinstance(value, bool) and isinstance(value, int) and low <= value <= high

    if not isinstance(data, dict):
        raise bad(f"expected a mapping, got {show(data)}")
    if data.get("format") not in (PROFILE_FORMAT, TORCH_ONLY_FORMAT):
        raise bad(f"expected format {PROFILE_FORMAT}, got {show(data.get('format'))} (write one with mnsize profile)")
    runtime, version = _runtime(data, bad)
    model = data.get("model")
    if not isinstance(model, dict) or not isinstance(model.get("ms_per"), dict):
        raise bad("missing model.ms_per")
    # the runtime's model: with the per-call costs, or (a runtime without them) none of them
    call_overhead = any(name in model["ms_per"] for name in CALL_FEATURES)
    features = model_features(call_overhead)
    keys = ("ms_per", "offset_ms", "lanes") + (() if call_overhead else ("cached_weights_mib",))
    for key in model:
        if key not in keys:
            raise bad(f"model: unknown key {show(key)} (expected {', '.join(keys)})")
    known = features + (() if call_overhead else (SPILL_FEATURE,))
    for key in model["ms_per"]:
        if key not in known:
            raise bad(f"model.ms_per: unknown feature {show(key)} for {runtime} (expected {', '.join(known)})")
    coefficients = {}
    for name in features:
        if name in LATER_COMPILED_FEATURES and name not in model["ms_per"]:
            coefficients[name] = 0.0
            continue
        if name in COMPILED_FEATURES and name not in model["ms_per"]:
            raise bad(f"model.ms_per has no {name}: a profile for {runtime} written by an older mnsize, whose "
                      f"model counted {runtime}'s layouts otherwise; make it again with mnsize profile")
        value = model["ms_per"].get(name)
        if not number(value) or not 0 <= value < 1e3:
            raise bad(f"model.ms_per.{name} must be a number from 0 to 1000, got {show(value)}")
        coefficients[name] = float(value)
    spill, cache = 0.0, 0.0
    if not call_overhead:
        for where, name in ((model["ms_per"], SPILL_FEATURE), (model, "cached_weights_mib")):
            if name not in where:
                raise bad(f"{'model.ms_per' if where is not model else 'model'} has no {name}: a profile for "
                          f"{runtime} written by an older mnsize; make it again with mnsize profile")
        spill, cache = model["ms_per"][SPILL_FEATURE], model["cached_weights_mib"]
        if not number(spill) or not 0 <= spill < 1e3:
            raise bad(f"model.ms_per.{SPILL_FEATURE} must be a number from 0 to 1000, got {show(spill)}")
        if not number(cache) or not 0 <= cache <= 2**20:
            raise bad(f"model.cached_weights_mib must be a number of MiB from 0 to {2**20:,}, got {show(cache)}")
    offset = model.get("offset_ms")
    if not number(offset) or not 0 <= offset < 1e3:
        raise bad(f"model.offset_ms must be a number from 0 to 1000, got {show(offset)}")
    if offset == 0 and not any(coefficients.values()):
        raise bad("every coefficient and model.offset_ms are 0: it would predict 0 ms for any network")
    lanes = model.get("lanes")
    if not whole(lanes, 1, 64):
        raise bad(f"model.lanes must be a whole number from 1 to 64, got {show(lanes)}")
    if "written_by" in data and not isinstance(data["written_by"], str):
        raise bad(f"written_by must be a string, got {show(data['written_by'])}")
    device = data.get("device", {})
    if not isinstance(device, dict):
        raise bad(f"device must be a mapping, got {show(device)}")
    if "threads" in device and not whole(device["threads"], 1, MAX_THREADS):
        raise bad(f"device.threads must be a whole number from 1 to {MAX_THREADS}, got {show(device['threads'])}")
    if "cores" in device and not whole(device["cores"], 1, MAX_CORES):
        raise bad(f"device.cores must be a whole number from 1 to {MAX_CORES:,}, got {show(device['cores'])}")
    for key in DEVICE_TEXT:
        if key in device and (not isinstance(device[key], str) or len(device[key]) > 1000):
            raise bad(f"device.{key} must be a string of at most 1,000 characters, got {show(device[key])}")
    error = data.get("error", {})
    if not isinstance(error, dict):
        raise bad(f"error must be a mapping, got {show(error)}")
    for key in ERROR_COUNTS:
        if key in error and not whole(error[key], 0, MAX_NETWORKS):
            raise bad(f"error.{key} must be a whole number from 0 to {MAX_NETWORKS:,}, got {show(error[key])}")
    for key in ERROR_SHARES:
        if key in error and (not number(error[key]) or not 0 <= error[key] <= 1e6):
            raise bad(f"error.{key} must be a number from 0 to 1,000,000, got {show(error[key])}")
    if "held_out_within_10pct" in error and error["held_out_within_10pct"] > 1:
        raise bad(f"error.held_out_within_10pct is a share from 0 to 1, got {show(error['held_out_within_10pct'])}")
    quality = data.get("quality")
    if quality is not None and quality not in QUALITIES:
        raise bad(f"quality must be good or poor, got {show(quality)}")
    if "held_out_within_10pct" in error:  # the figures decide, whatever the marking says
        quality = quality_of(error["held_out_within_10pct"])
    return Profile(os.fspath(path), device, coefficients, float(offset), lanes, error, runtime, version, quality,
                   float(spill), float(cache))


def _runtime(data: dict, bad) -> tuple[str, str]:
    """(runtime, its version) a profile was made for; format 2, or a profile
    that names no runtime, is torch's."""
    if data["format"] == TORCH_ONLY_FORMAT:
        if "runtime" in data:
            raise bad(f"format {TORCH_ONLY_FORMAT} has no runtime (it is torch's); runtimes came with "
                      f"{PROFILE_FORMAT}")
        version = data.get("device", {}).get("torch", "") if isinstance(data.get("device"), dict) else ""
        return "torch", version if isinstance(version, str) else ""
    runtime = data.get("runtime", {"name": "torch"})  # a profile that names none is torch's, as before runtimes
    name = runtime.get("name") if isinstance(runtime, dict) else runtime
    if not isinstance(name, str) or not re.fullmatch(r"[a-z][a-z0-9_.-]{0,63}", name):
        raise bad(f"runtime.name must be a runtime's name (torch, onnxruntime, ...), got {show(name)}")
    version = runtime.get("version", "")
    if not isinstance(version, str) or len(version) > 1000:
        raise bad(f"runtime.version must be a string of at most 1,000 characters, got {show(version)}")
    return name, version
