"""The ONNX reader (mnsize.onnxfile) and the layers mnsize.graph recognises in
any front-end's Ops: small graphs written with onnx.helper for every op it
maps and every refusal, then real exports, counted exactly: mnsize's own
models through torch.onnx.export, and Keras applications, raw and as
onnxruntime's basic optimisations leave them."""

from __future__ import annotations

import math
import os
import subprocess
import sys
import warnings

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper

import mnsize.onnxfile
import mnsize.onnxops
from mnsize.costs import Counts, count
from mnsize.errors import GraphError
from mnsize.expand import deployed, expand
from mnsize.graph import Op, layer_atoms, layer_name, to_layers
from mnsize.models import builtin_names, load_spec
from mnsize.onnxfile import read_onnx

from .onnx_graphs import Graph


def layers_of(path, resolution=None, default=None):
    return to_layers(read_onnx(path, resolution, default).ops, str(path))


def refused(path, *fragments, resolution=None) -> str:
    """The one line of the GraphError reading ``path`` gives, naming the file."""
    with pytest.raises(GraphError) as caught:
        layers_of(path, resolution)
    line = str(caught.value)
    assert "\n" not in line and line.startswith(str(path)), line
    for fragment in fragments:
        assert fragment in line, line
    return line


def conv_madds(k, c_in, c_out, groups, h, w):
    return k * k * (c_in // groups) * c_out * h * w


# --------------------------------------------------------------------------- convolutions


def test_each_kind_of_convolution_is_its_layer_and_counts_by_its_formula(tmp_path):
    g = Graph((1, 3, 16, 16))
    y = g.op("Relu", g.op("BatchNormalization", g.conv(g.x, 3, 8, 3, stride=2, pads=[1, 1, 1, 1]),
                          *(g.weight(8) for _ in range(4))))
    y = g.op("Clip", g.conv(y, 8, 8, 3, groups=8, bias=True, pads=[1, 1, 1, 1]), g.const(0.0), g.const(6.0))
    y = g.conv(y, 8, 16, 1)
    y = g.conv(y, 16, 32, 3, groups=4, pads=[1, 1, 1, 1])
    layers = layers_of(g.save(tmp_path / "convs.onnx", y))
    assert [(lay.kind, lay.groups, lay.kernel, lay.stride, lay.bn, lay.bias, lay.act) for lay in layers] == [
        ("conv", 1, 3, 2, True, False, "relu"), ("dw", 8, 3, 1, False, True, "relu6"),
        ("pw", 1, 1, 1, False, False, "none"), ("conv", 4, 3, 1, False, False, "none")]
    assert [lay.out_shape for lay in layers] == [(8, 8, 8), (8, 8, 8), (16, 8, 8), (32, 8, 8)]
    assert [lay.position for lay in layers] == [1, 4, 6, 7]
    assert [r.madds for r in count(layers).rows] == [
        conv_madds(3, 3, 8, 1, 8, 8), conv_madds(3, 8, 8, 8, 8, 8), conv_madds(1, 8, 16, 1, 8, 8),
        conv_madds(3, 16, 32, 4, 8, 8)]
    assert count(layers).params == 3 * 3 * 3 * 8 + (3 * 3 * 8 + 8) + 8 * 16 + 3 * 3 * 4 * 32
    assert count(layers).bn_params == 2 * 8


@pytest.mark.parametrize("side, attrs, out", [
    ((11, 11), {"pads": [1, 1, 1, 1]}, (6, 6)),
    ((11, 11), {"pads": [0, 0, 1, 1]}, (5, 5)),              # TensorFlow's asymmetric SAME padding
    ((11, 11), {"pads": [1, 0, 1, 0]}, (6, 5)),
    ((11, 7), {"auto_pad": "SAME_UPPER"}, (6, 4)),
    ((11, 7), {"auto_pad": "SAME_LOWER"}, (6, 4)),
    ((11, 11), {"auto_pad": "VALID"}, (5, 5)),
    ((11, 11), {}, (5, 5)),                                  # no pads: none
])
def test_a_convolutions_output_follows_its_padding(tmp_path, side, attrs, out):
    g = Graph((1, 3, *side))
    layer, = layers_of(g.save(tmp_path / "pad.onnx", g.conv(g.x, 3, 4, 3, stride=2, **attrs)))
    assert layer.out_shape == (4, *out)
    assert count([layer]).madds == conv_madds(3, 3, 4, 1, *out)


def test_dilation_spaces_the_taps_and_the_kernel_may_come_from_the_weight(tmp_path):
    g = Graph((1, 4, 12, 12))
    g.nodes.append(helper.make_node("Conv", [g.x, g.weight(4, 1, 3, 3)], ["y"], name="atrous", group=4,
                                    dilations=[2, 2], pads=[1, 1, 1, 1]))
    layer, = layers_of(g.save(tmp_path / "dilated.onnx", "y"))
    assert (layer.kind, layer.kernel, layer.dilation, layer.out_shape) == ("dw", 3, 2, (4, 10, 10))


def test_a_kernel_that_is_not_square_is_refused_naming_the_node(tmp_path):
    g = Graph((1, 3, 8, 8))
    g.nodes.append(helper.make_node("Conv", [g.x, g.weight(4, 3, 3, 1)], ["y"], name="tall"))
    refused(g.save(tmp_path / "tall.onnx", "y"), "node 1 (Conv 'tall')", "kernel 3x1")


# --------------------------------------------------------------------------- fully connected, BatchNorm, pooling


def test_gemm_and_matmul_are_fully_connected_layers_on_what_was_flattened(tmp_path):
    g = Graph((1, 3, 8, 8))
    pooled = g.op("GlobalAveragePool", g.conv(g.x, 3, 16, 1))
    y = g.op("Gemm", g.op("Flatten", pooled), g.weight(10, 16), g.weight(10), transB=1)
    y = g.op("Add", g.op("MatMul", y, g.weight(10, 7)), g.const(np.zeros(7)))
    y = g.op("Gemm", y, g.weight(7, 5))
    pw, pool, fc1, fc2, fc3 = layers_of(g.save(tmp_path / "fc.onnx", g.op("Softmax", y)))
    assert (pool.kind, pool.kernel, pool.out_shape) == ("avgpool", None, (16, 1, 1))
    assert [(fc.kind, fc.in_shape, fc.out_shape, fc.bias) for fc in (fc1, fc2, fc3)] == [
        ("fc", (16, 1, 1), (10, 1, 1), True), ("fc", (10, 1, 1), (7, 1, 1), True),
        ("fc", (7, 1, 1), (5, 1, 1), False)]
    g = Graph((1, 4, 3, 3))
    layer, = layers_of(g.save(tmp_path / "flat.onnx", g.op("Gemm", g.op("Flatten", g.x), g.weight(36, 2))))
    assert layer.in_shape == (4, 3, 3) and count([layer]).madds == 36 * 2


def test_batchnorm_written_out_is_batchnorm_and_a_lone_add_a_bias(tmp_path):
    g = Graph((1, 3, 8, 8))
    y = g.conv(g.x, 3, 8, 1)
    y = g.op("Add", g.op("Mul", g.op("Sub", y, g.const(np.zeros((8, 1, 1)))), g.const(np.ones((1, 8, 1, 1)))),
             g.const(np.zeros((8, 1, 1))))
    y = g.op("Add", g.conv(y, 8, 8, 1), g.const(np.zeros((1, 8, 1, 1))))
    y = g.op("Div", g.op("Mul", g.conv(y, 8, 8, 1), g.const(np.ones((8, 1, 1)))), g.const(np.ones((8, 1, 1))))
    layers = layers_of(g.save(tmp_path / "affine.onnx", y))
    assert [(lay.bn, lay.bias) for lay in layers] == [(True, False), (False, True), (True, False)]


@pytest.mark.parametrize("op, attrs, kind, kernel, stride, out", [
    ("AveragePool", {"kernel_shape": [3, 3], "strides": [2, 2], "pads": [1, 1, 1, 1]}, "avgpool", 3, 2, 4),
    ("MaxPool", {"kernel_shape": [3, 3], "strides": [2, 2]}, "maxpool", 3, 2, 3),
    ("MaxPool", {"kernel_shape": [3, 3], "strides": [2, 2], "ceil_mode": 1}, "maxpool", 3, 2, 4),
    ("MaxPool", {"kernel_shape": [2, 2], "strides": [2, 2], "auto_pad": "SAME_UPPER"}, "maxpool", 2, 2, 4),
])
def test_windowed_pooling_is_a_pooling_layer(tmp_path, op, attrs, kind, kernel, stride, out):
    g = Graph((1, 3, 8, 8))
    _, layer = layers_of(g.save(tmp_path / "pool.onnx", g.op(op, g.conv(g.x, 3, 4, 1), **attrs)))
    assert (layer.kind, layer.kernel, layer.stride, layer.out_shape) == (kind, kernel, stride, (4, out, out))
    assert count([layer]).totals == Counts(0, 0, 0)


def test_a_mean_over_height_and_width_is_global_pooling_and_over_channels_is_refused(tmp_path):
    g = Graph((1, 3, 8, 8))
    y = g.op("ReduceMean", g.conv(g.x, 3, 4, 1), g.const([2, 3], np.int64), keepdims=0)
    _, pool = layers_of(g.save(tmp_path / "mean.onnx", y))
    assert (pool.kind, pool.in_shape, pool.out_shape) == ("avgpool", (4, 8, 8), (4, 1, 1))
    g = Graph((1, 3, 8, 8))
    y = g.op("ReduceMean", g.conv(g.x, 3, 4, 1), g.const([1], np.int64), name="channels")
    refused(g.save(tmp_path / "channels.onnx", y), "ReduceMean 'channels'", "not the height and width")


# --------------------------------------------------------------------------- activations


ACTIVATIONS = {
    "Relu": (lambda g, y: g.op("Relu", y), "relu"),
    "Clip 0..6": (lambda g, y: g.op("Clip", y, g.const(0.0), g.const(6.0)), "relu6"),
    "Clip 0..": (lambda g, y: g.op("Clip", y, g.const(0.0)), "relu"),
    "HardSwish": (lambda g, y: g.op("HardSwish", y), "hardswish"),
    "HardSigmoid 1/6": (lambda g, y: g.op("HardSigmoid", y, alpha=1 / 6), "hardsigmoid"),
    "HardSigmoid Keras": (lambda g, y: g.op("HardSigmoid", y), "hardsigmoid"),
    "Sigmoid": (lambda g, y: g.op("Sigmoid", y), "sigmoid"),
    "Gelu": (lambda g, y: g.op("Gelu", y), "gelu"),
    "x * sigmoid(x)": (lambda g, y: g.op("Mul", y, g.op("Sigmoid", y)), "silu"),
    "x * hardsigmoid(x)": (lambda g, y: g.op("Mul", g.op("HardSigmoid", y, alpha=1 / 6), y), "hardswish"),
    "relu6(x + 3) / 6": (lambda g, y: g.op("Div", g.op("Clip", g.op("Add", y, g.const(3.0)), g.const(0.0),
                                                       g.const(6.0)), g.const(6.0)), "hardsigmoid"),
    "x * relu6(x + 3) * 1/6": (lambda g, y: g.op("Mul", y, g.op("Mul", g.op("Clip", g.op("Add", y, g.const(3.0)),
                                                                            g.const(0.0), g.const(6.0)),
                                                                  g.const(1 / 6))), "hardswish"),
}


@pytest.mark.parametrize("pattern", sorted(ACTIVATIONS))
def test_every_activation_and_its_written_out_forms_is_the_layers_act(tmp_path, pattern):
    build, act = ACTIVATIONS[pattern]
    g = Graph((1, 3, 8, 8))
    y = build(g, g.op("Transpose", g.op("Transpose", g.conv(g.x, 3, 4, 3), perm=[0, 2, 3, 1]), perm=[0, 3, 1, 2]))
    layers = layers_of(g.save(tmp_path / "act.onnx", g.op("Softmax", g.op("Flatten", y))))
    assert [(lay.kind, lay.act) for lay in layers] == [("conv", act)]


def test_clip_in_opset_6_reads_its_bounds_from_attributes(tmp_path):
    g = Graph((1, 3, 8, 8), opset=10)
    layer, = layers_of(g.save(tmp_path / "clip.onnx", g.op("Clip", g.conv(g.x, 3, 4, 1), min=0.0, max=6.0)))
    assert layer.act == "relu6"


@pytest.mark.parametrize("build, fragment", [
    (lambda g, y: g.op("Clip", y, g.const(-1.0), g.const(1.0), name="tanhish"), "Clip to [-1.0, 1.0]"),
    (lambda g, y: g.op("HardSigmoid", y, alpha=0.3, name="tanhish"), "alpha 0.3"),
    (lambda g, y: g.op("LeakyRelu", y, name="tanhish"), "op type LeakyRelu is not counted"),
])
def test_activations_mnsize_does_not_know_are_refused(tmp_path, build, fragment):
    g = Graph((1, 3, 8, 8))
    refused(g.save(tmp_path / "act.onnx", build(g, g.conv(g.x, 3, 4, 1))), "'tanhish'", fragment)


# --------------------------------------------------------------------------- blocks


def _squeeze_excite(g, x, channels, squeeze, gate, flat=False):
    if flat:  # Keras: mean to (N, C), then reshaped to a 1x1 map
        pooled = g.op("Reshape", g.op("ReduceMean", x, g.const([2, 3], np.int64), keepdims=0),
                      g.const([-1, channels, 1, 1], np.int64))
    else:
        pooled = g.op("GlobalAveragePool", x)
    hidden = g.op("Relu", g.conv(pooled, channels, squeeze, 1, bias=True))
    excited = g.op("Add", g.conv(hidden, squeeze, channels, 1), g.const(np.zeros((channels, 1, 1))))
    return g.op("Mul", x, gate(g, excited), name="/block/se/Mul")


@pytest.mark.parametrize("gate, name, flat", [
    (lambda g, y: g.op("HardSigmoid", y, alpha=1 / 6), "hardsigmoid", False),
    (lambda g, y: g.op("Sigmoid", y), "sigmoid", True),
    (ACTIVATIONS["relu6(x + 3) / 6"][0], "hardsigmoid", True),
])
def test_squeeze_and_excite_is_one_layer(tmp_path, gate, name, flat):
    g = Graph((1, 3, 8, 8))
    x = g.op("Relu", g.conv(g.x, 3, 16, 3, pads=[1, 1, 1, 1]))
    y = g.conv(_squeeze_excite(g, x, 16, 4, gate, flat), 16, 8, 1)
    conv, se, pw = layers_of(g.save(tmp_path / "se.onnx", y))
    assert (se.kind, se.name, se.in_shape, se.out_shape, se.squeeze, se.se_act, se.gate, se.bias) == (
        "se", "block.se", (16, 8, 8), (16, 8, 8), 4, "relu", name, True)
    assert count([se]).totals == Counts(2 * 16 * 4, 2 * 16 * 4 + 4 + 16, 0)
    assert [(a.kind, a.madds, a.params, a.shape) for a in layer_atoms([se])] == [
        ("conv", 16 * 4, 16 * 4 + 4, (4, 1, 1)), ("conv", 4 * 16, 4 * 16 + 16, (16, 1, 1))]


def test_a_residual_add_marks_the_layer_that_made_the_later_operand(tmp_path):
    g = Graph((1, 8, 8, 8))
    a = g.op("Relu", g.conv(g.x, 8, 8, 1))
    b = g.conv(g.op("Relu", g.conv(a, 8, 8, 3, groups=8, pads=[1, 1, 1, 1])), 8, 8, 1)
    layers = layers_of(g.save(tmp_path / "res.onnx", g.op("Add", a, b)))
    assert [lay.residual for lay in layers] == [False, False, True]
    g = Graph((1, 8, 8, 8))
    a = g.conv(g.x, 8, 8, 1)
    refused(g.save(tmp_path / "post.onnx", g.op("Relu", g.op("Add", a, g.conv(a, 8, 8, 1)), name="after")),
            "(Relu 'after')", "not a convolution or fully connected layer")


# --------------------------------------------------------------------------- layouts, shapes and constants


def test_a_keras_style_nhwc_graph_reports_channels_first(tmp_path):
    g = Graph((1, 12, 10, 3))
    x = g.op("Add", g.op("Mul", g.x, g.const(1 / 127.5)), g.const(-1.0))        # Rescaling: free
    x = g.op("Div", g.op("Sub", x, g.const(np.zeros(3))), g.const(np.ones(3)))  # Normalization: free
    y = g.op("Transpose", g.conv(g.op("Transpose", x, perm=[0, 3, 1, 2]), 3, 8, 3, stride=2, pads=[1, 1, 1, 1]),
             perm=[0, 2, 3, 1])
    y = g.op("Relu", g.op("Add", g.op("Mul", g.op("Sub", y, g.const(np.zeros(8))), g.const(np.ones(8))),
                          g.const(np.zeros((1, 1, 1, 8)))))
    y = g.op("ReduceMean", y, g.const([1, 2], np.int64), keepdims=0)
    y = g.op("Add", g.op("MatMul", y, g.weight(8, 5)), g.const(np.zeros(5)))
    model = read_onnx(g.save(tmp_path / "nhwc.onnx", g.op("Softmax", y)))
    assert model.input_shape == (3, 12, 10) and model.name == "nhwc" and model.opset == 20
    conv, pool, fc = to_layers(model.ops, model.path)
    assert (conv.in_shape, conv.out_shape, conv.bn, conv.act) == ((3, 12, 10), (8, 6, 5), True, "relu")
    assert (pool.in_shape, fc.in_shape, fc.out_shape, fc.bias) == ((8, 6, 5), (8, 1, 1), (5, 1, 1), True)


def test_pads_computed_from_the_input_shape_are_folded(tmp_path):
    """Keras's ZeroPadding: the pads come from Shape, Gather, arithmetic and
    Concat, which onnx's shape inference does not follow."""
    g = Graph((1, 3, 11, 11))
    side = g.op("Gather", g.op("Shape", g.x), g.const(2, np.int64), axis=0)
    extra = g.op("Sub", g.const(12, np.int64), side)                       # 1
    ends = g.op("Mul", g.const([0, 0, 1, 1], np.int64), g.op("Unsqueeze", extra, g.const([0], np.int64)))
    pads = g.op("Concat", g.op("ConstantOfShape", g.const([4], np.int64),
                               value=helper.make_tensor("v", TensorProto.INT64, [1], [0])), ends, axis=0)
    y = g.op("Pad", g.op("Cast", g.op("Identity", g.x), to=TensorProto.FLOAT), pads)
    y = g.op("Dropout", g.conv(y, 3, 4, 3, stride=2))
    y = g.op("Squeeze", g.op("Unsqueeze", y, g.const([4], np.int64)), g.const([4], np.int64))
    layer, = layers_of(g.save(tmp_path / "pads.onnx", y))
    # the zeros are the convolution's own padding: it reads the 11x11 input, padded [0, 1] (as a spec says it)
    assert (layer.in_shape, layer.padding, layer.out_shape) == ((3, 11, 11), (0, 1), (4, 5, 5))


@pytest.mark.parametrize("pads,value,padding,in_shape", [
    ([0, 0, 1, 1, 0, 0, 2, 2], None, (1, 2), (3, 11, 11)),     # the same zeros on H and W: the conv's padding
    ([0, 0, 1, 0, 0, 0, 2, 0], None, None, (3, 14, 11)),       # H only: a tensor of its own
    ([0, 0, 1, 1, 0, 0, 1, 1], 1.0, None, (3, 13, 13)),        # ones, not zeros
])
def test_a_zero_pad_before_a_conv_is_its_padding_only_when_it_can_be(tmp_path, pads, value, padding, in_shape):
    g = Graph((1, 3, 11, 11))
    extra = [g.const(value, np.float32)] if value is not None else []
    y = g.op("Pad", g.x, g.const(pads, np.int64), *extra)
    layer, = layers_of(g.save(tmp_path / "pad.onnx", g.conv(y, 3, 4, 3)))
    assert (layer.in_shape, layer.padding) == (in_shape, padding)
    assert layer.out_shape[1:] == (in_shape[1] + sum(padding or (0, 0)) - 2, in_shape[2] + sum(padding or (0, 0)) - 2)


def test_symbolic_sizes_take_the_resolution_and_fixed_ones_keep_theirs(tmp_path):
    g = Graph(("batch", 3, "height", "width"))
    path = g.save(tmp_path / "symbolic.onnx", g.conv(g.x, 3, 4, 3, stride=2, pads=[1, 1, 1, 1]))
    refused(path, "symbolic", "--res")
    assert layers_of(path, (32, 24))[0].out_shape == (4, 16, 12)
    assert layers_of(path, None, (64, 64))[0].out_shape == (4, 32, 32)
    assert read_onnx(path, (32, 24), (64, 64)).input_shape == (3, 32, 24)
    assert read_onnx(path, 40).input_shape == (3, 40, 40)
    g = Graph((8, 3, 16, 16))  # a fixed batch: counts are per image all the same
    path = g.save(tmp_path / "fixed.onnx", g.conv(g.x, 3, 4, 3, pads=[1, 1, 1, 1]))
    assert count(layers_of(path)).madds == conv_madds(3, 3, 4, 1, 16, 16)
    assert layers_of(path, (16, 16))[0].out_shape == (4, 16, 16)
    refused(path, "fixes the input at 16x16", "--res 32x32", resolution=(32, 32))


@pytest.mark.parametrize("build, fragment", [
    (lambda g, y: g.op("Sub", y, g.op("Relu", g.conv(g.x, 3, 4, 1)), name="bad"), "element-wise sub of two computed"),
    (lambda g, y: g.op("Sub", g.const(1.0), y, name="bad"), "from a constant"),
    (lambda g, y: g.op("Mul", y, g.const(np.ones((1, 1, 8, 8))), name="bad"), "neither one number nor one per"),
    (lambda g, y: g.op("Mul", g.op("Relu", y), g.const(2.0), name="bad"), "an element-wise mul by 2 on computed data"),
    (lambda g, y: g.op("Mul", g.op("GlobalAveragePool", y), g.const(np.ones((4, 1, 1))), name="bad"),
     "a per-channel mul that does not follow"),
    (lambda g, y: g.op("Mul", g.op("Relu", y), g.op("Sigmoid", g.conv(g.x, 3, 4, 1)), name="bad"), "a product of two"),
    (lambda g, y: g.op("Add", y, g.op("GlobalAveragePool", y), name="bad"), "adds tensors of shapes"),
    (lambda g, y: g.op("Einsum", y, name="bad", equation="ij->ij"), "op type Einsum is not counted (mnsize counts"),
    (lambda g, y: g.op("Reshape", y, g.op("Cast", g.op("Relu", y), to=TensorProto.INT64), name="bad"),
     "computed from the input's values"),
    (lambda g, y: g.conv(g.op("Transpose", y, perm=[0, 2, 3, 1]), 8, 4, 1, name="bad"),
     "a tensor whose layout mnsize cannot follow"),
])
def test_what_a_layer_cannot_say_is_refused_naming_the_node(tmp_path, build, fragment):
    g = Graph((1, 3, 8, 8))
    line = refused(g.save(tmp_path / "bad.onnx", build(g, g.conv(g.x, 3, 4, 1))), fragment)
    assert " 'bad'): " in line


def test_refusals_say_where_in_the_promised_form(tmp_path):
    g = Graph((1, 3, 8, 8))
    path = g.save(tmp_path / "einsum.onnx", g.op("Einsum", g.conv(g.x, 3, 4, 1), name="foo", equation="ij->ij"))
    assert refused(path) == (f"{path}: node 2 (Einsum 'foo'): op type Einsum is not counted "
                             f"({mnsize.onnxops.COUNTED})")


def test_ops_from_any_front_end_are_checked():
    def conv(**fields):
        base = dict(index=7, name="features.3", op_type="aten.conv2d.default", kind="conv", inputs=("x",),
                    output="y", in_shape=(3, 8, 8), out_shape=(8, 8, 8), kernel=(3, 3), weights=3 * 3 * 3 * 8)
        return Op(**{**base, **fields})

    assert to_layers([conv()], "m")[0].kind == "conv"
    for op, fragment in ((conv(weights=100), "100 weights"), (conv(stride=(1, 2)), "stride 1x2"),
                         (conv(bias=3), "3 biases"), (conv(kind="lstm"), "kind 'lstm'")):
        with pytest.raises(GraphError, match="^m: node 7 \\(aten.conv2d.default 'features.3'\\): ") as caught:
            to_layers([op], "m")
        assert fragment in str(caught.value)


@pytest.mark.parametrize("name, readable", [
    ("/features/features.0/features.0.0/Conv", "features.0.0"), ("/ir1/se/Mul", "ir1.se"),
    ("/conv1/conv/Conv", "conv1.conv"), ("conv2d_1", "conv2d_1"), ("/Conv_6", "Conv_6"), ("", "layer"),
])
def test_layer_names_are_made_readable(name, readable):
    assert layer_name(name) == readable


# --------------------------------------------------------------------------- files that are not models, or hostile


def _einsum_free(tmp_path, name="m.onnx") -> str:
    g = Graph((1, 3, 8, 8))
    return g.save(tmp_path / name, g.op("Relu", g.conv(g.x, 3, 4, 1)))


@pytest.mark.parametrize("content, fragment", [
    (os.urandom(4096), "not an ONNX model"),
    (b"name: tiny\nlayers:\n  - {kind: conv, out: 8}\n", "not an ONNX model"),
    (b"", "not an ONNX model"),
])
def test_a_file_that_is_not_onnx_is_refused(tmp_path, content, fragment):
    path = tmp_path / "x.onnx"
    path.write_bytes(content)
    refused(path, fragment)


def test_a_truncated_file_is_refused(tmp_path):
    data = open(_einsum_free(tmp_path), "rb").read()
    cut = tmp_path / "cut.onnx"
    for size in (len(data) // 2, len(data) - 3):
        cut.write_bytes(data[:size])
        refused(cut)


def test_a_missing_file_is_one_line(tmp_path):
    refused(tmp_path / "missing.onnx", "no such file")
    refused(tmp_path, "a directory")


def test_cycles_and_undefined_values_are_refused(tmp_path):
    g = Graph((1, 3, 8, 8))
    g.nodes += [helper.make_node("Add", [g.x, "b"], ["a"], name="first"),
                helper.make_node("Relu", ["a"], ["b"], name="second")]
    refused(g.save(tmp_path / "cycle.onnx", "b"), "cycle through node 1 (Add 'first')")
    g = Graph((1, 3, 8, 8))
    g.nodes.append(helper.make_node("Add", [g.x, "ghost"], ["a"], name="first"))
    refused(g.save(tmp_path / "ghost.onnx", "a"), "node 1 (Add 'first') reads 'ghost', which nothing")
    g = Graph((1, 3, 8, 8))  # out of order but acyclic: read in an order that works
    g.nodes += [helper.make_node("Relu", ["a"], ["b"], name="second"),
                helper.make_node("Conv", [g.x, g.weight(4, 3, 1, 1)], ["a"], name="first")]
    assert [(lay.name, lay.act) for lay in layers_of(g.save(tmp_path / "order.onnx", "b"))] == [("first", "relu")]


def test_layers_from_one_scope_get_names_of_their_own(tmp_path):
    g = Graph((1, 3, 8, 8))
    y = g.conv(g.conv(g.conv(g.x, 3, 4, 1, name="/block/Conv"), 4, 4, 1, name="/block/Conv_1"), 4, 4, 1, name="/b")
    assert [lay.name for lay in layers_of(g.save(tmp_path / "names.onnx", y))] == ["block", "block_2", "b"]


def test_bounds_are_checked_before_the_work(tmp_path, monkeypatch):
    path = _einsum_free(tmp_path)
    monkeypatch.setattr(mnsize.onnxfile, "MAX_GRAPH_NODES", 1)
    refused(path, "2 nodes, more than the 1 a graph may have")
    monkeypatch.setattr(mnsize.onnxfile, "MAX_ONNX_BYTES", 100)
    noise = tmp_path / "noise.onnx"
    noise.write_bytes(os.urandom(101))  # refused for its size, before it is parsed
    refused(noise, "101 bytes, more than the 100")


@pytest.mark.parametrize("location, fragment", [
    ("weights.bin", None), ("sub/weights.bin", None),
    ("/etc/passwd", "outside the model's folder"), ("../weights.bin", "outside the model's folder"),
    ("sub/../../weights.bin", "outside the model's folder"),
])
def test_external_data_is_never_read_and_never_outside_the_models_folder(tmp_path, location, fragment):
    g = Graph((1, 3, 8, 8))
    y = g.conv(g.x, 3, 4, 1)
    weight = next(t for t in g.initializers if t.name == g.nodes[-1].input[1])
    weight.ClearField("raw_data")
    weight.data_location = TensorProto.EXTERNAL
    weight.external_data.add(key="location", value=location)
    path = g.save(tmp_path / "external.onnx", y)
    if fragment:
        refused(path, fragment)
    else:  # the data file does not even exist: the dims are all a count needs
        assert count(layers_of(path)).params == 3 * 4


def test_the_input_must_be_one_image(tmp_path):
    g = Graph((1, 3, 8, 8))
    y = g.conv(g.x, 3, 4, 1)
    model = g.model(y)
    model.graph.input.append(helper.make_tensor_value_info("other", TensorProto.FLOAT, [1, 3]))
    onnx.save(model, str(tmp_path / "two.onnx"))
    refused(tmp_path / "two.onnx", "2 inputs")
    g = Graph((1, 3, 8))
    refused(g.save(tmp_path / "rank3.onnx", g.op("Relu", g.x)), "has 3 dims")


def test_reading_imports_neither_torch_nor_keras(tmp_path):
    path = _einsum_free(tmp_path)
    code = ("import sys; from mnsize.onnxfile import read_onnx; from mnsize.graph import to_layers; "
            f"to_layers(read_onnx({str(path)!r}).ops, 'm'); "
            "print(sorted(m for m in ('torch', 'keras', 'onnxruntime') if m in sys.modules))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"


# --------------------------------------------------------------------------- real exports


@pytest.fixture(scope="session")
def torch_export(tmp_path_factory):
    """mnsize's own model of a built-in spec through torch.onnx.export
    (TorchScript), once per (spec, mode). In training mode the BatchNorm nodes
    stay; in eval mode the exporter folds each into the conv before it."""
    import torch

    from mnsize.nn import build_model

    folder = tmp_path_factory.mktemp("torch")
    exported: dict[tuple[str, str], str] = {}

    def export(name: str, mode: str) -> str:
        if (name, mode) not in exported:
            model = build_model(name).train(mode == "train")
            path = str(folder / f"{name}.{mode}.onnx")
            options = {"training": torch.onnx.TrainingMode.TRAINING, "do_constant_folding": False} \
                if mode == "train" else {}
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                torch.onnx.export(model, (torch.zeros(1, 3, 224, 224),), path, dynamo=False, **options)
            exported[name, mode] = path
        return exported[name, mode]
    return export


def per_layer(layers):
    """What two readings of one network must agree on, layer by layer (dropout,
    which an export drops, aside)."""
    return [(r.layer.kind, r.layer.in_shape, r.layer.out_shape, r.layer.kernel, r.layer.stride, r.layer.act,
             r.layer.residual, r.counts) for r in count(layers).rows if r.layer.kind != "dropout"]


@pytest.mark.parametrize("name", builtin_names())
def test_an_exported_builtin_counts_exactly_as_its_spec(torch_export, name):
    layers = layers_of(torch_export(name, "train"))
    spec = expand(load_spec(name))
    assert count(layers).totals == count(spec).totals
    assert per_layer(layers) == per_layer(spec)


@pytest.mark.parametrize("name", ["mobilenet_v2", "mobilenet_v3_small"])
def test_an_export_with_batchnorm_folded_counts_as_the_spec_deployed(torch_export, name):
    """In eval mode torch.onnx.export folds each BatchNorm into the conv before
    it: the conv gains a bias (C_out parameters) and the BatchNorm's 2·C_out go,
    exactly mnsize.expand.deployed; mult-adds do not move."""
    layers = layers_of(torch_export(name, "eval"))
    assert not any(lay.bn for lay in layers)
    assert per_layer(layers) == per_layer(deployed(expand(load_spec(name))))
    assert count(layers).madds == count(expand(load_spec(name))).madds


@pytest.mark.parametrize("name", ["mobilenet_v1", "mobilenet_v3_small"])
def test_the_atoms_of_a_network_add_up_to_its_counts(name):
    layers = expand(load_spec(name))
    atoms, totals = layer_atoms(layers), count(layers).totals
    assert (sum(a.madds for a in atoms), sum(a.params for a in atoms), sum(a.bn_params for a in atoms)) == (
        totals.madds, totals.params, totals.bn_params)
    assert len(atoms) == sum(2 if lay.kind == "se" else lay.kind in ("conv", "dw", "pw", "fc") for lay in layers)


#: a Keras application and the built-in spec with its widths
KERAS = {"MobileNetV2": "mobilenet_v2", "MobileNetV3Small": "mobilenet_v3_small", "EfficientNetB0": "efficientnet_b0"}


@pytest.fixture(scope="session")
def keras_files(tmp_path_factory):
    from . import keras_models

    return keras_models.export_all(tmp_path_factory.mktemp("keras_onnx"), tuple((k, 1.0) for k in KERAS))


@pytest.mark.parametrize("family", sorted(KERAS))
def test_a_keras_export_counts_what_keras_counts(keras_files, family):
    """Keras counts 4 parameters per BatchNorm channel (γ, β and the moving
    mean and variance) where mnsize's bn_params holds 2, so Keras's figure is
    params + 2 · bn_params (input preprocessing's constants aside: see
    keras_models.keras_params); its mult-adds come from its own layers'
    shapes."""
    exported = keras_files[f"{family}-1.0"]
    raw, folded = layers_of(exported.onnx), layers_of(exported.folded)
    report = count(raw)
    assert report.params + 2 * report.bn_params == exported.params
    assert report.madds == exported.madds
    assert [r.counts for r in count(folded).rows] == [r.counts for r in report.rows]
    # layer for layer as the built-in spec (where Keras's classifier is a 1x1 conv, the spec's an fc)
    spec = count(expand(load_spec(KERAS[family])))
    assert [r.counts for r in report.rows] == [r.counts for r in spec.rows if r.layer.kind != "dropout"]
    assert math.prod(read_onnx(exported.onnx).input_shape) == 3 * 224 * 224


# --------------------------------------------------------------------------- malformed graphs and constants


def _flat(g, y):
    return g.op("Flatten", y)


MALFORMED = {
    "perm": (lambda g, y: g.op("Transpose", y, perm=[0, 1, 2], name="bad"), "is not a permutation"),
    "reshape": (lambda g, y: g.op("Reshape", y, g.const([-1, 7], np.int64), name="bad"), "cannot reshape"),
    "no target": (lambda g, y: g.op("Reshape", y, name="bad"), "has no target shape"),
    "flatten": (lambda g, y: g.op("Flatten", y, axis=9, name="bad"), "axis 9 does not fit"),
    "squeeze": (lambda g, y: g.op("Squeeze", y, g.const([1], np.int64), name="bad"), "which are not all 1"),
    "unsqueeze": (lambda g, y: g.op("Unsqueeze", y, g.const([9], np.int64), name="bad"), "do not fit a tensor"),
    "pads": (lambda g, y: g.op("Pad", y, g.const([0, 0], np.int64), name="bad"), "pads [0, 0] do not fit"),
    "crop": (lambda g, y: g.op("Pad", y, g.const([0, 0, -20, 0, 0, 0, 0, 0], np.int64), name="bad"),
             "give the shape"),
    "conv pads": (lambda g, y: g.conv(y, 4, 4, 1, pads=[1, 1, 1], name="bad"), "are not four values"),
    "stride": (lambda g, y: g.conv(y, 4, 4, 1, stride=0, name="bad"), "strides [0, 0] is not two values"),
    "window": (lambda g, y: g.conv(y, 4, 4, 9, name="bad"), "does not fit its input's 8"),
    "channels": (lambda g, y: g.conv(y, 5, 4, 1, name="bad"), "do not fit its 4 input channels"),
    "weights": (lambda g, y: g.op("Conv", y, g.op("Relu", y), name="bad"), "weights are computed"),
    "kernel": (lambda g, y: g.op("Conv", y, g.weight(4, 4, 1, 1), kernel_shape="ab", name="bad"),
               "cannot be read (TypeError"),
    "rank": (lambda g, y: g.op("MatMul", y, g.weight(8, 2), name="bad"), "multiplies [1, 4, 8, 8] by [8, 2]"),
    "computed matrix": (lambda g, y: g.op("MatMul", _flat(g, y), g.op("Transpose", _flat(g, y)), name="bad"),
                        "multiplies by a computed matrix"),
    "features": (lambda g, y: g.op("Gemm", _flat(g, y), g.weight(5, 3), name="bad"), "do not fit its 256 features"),
    "bias": (lambda g, y: g.op("Gemm", _flat(g, y), g.weight(256, 3), g.op("Flatten", g.x), name="bad"),
             "its bias is computed"),
    "growing": (lambda g, y: g.op("Add", y, g.const(np.zeros((2, 4, 8, 8))), name="bad"), "without growing it"),
    "broadcast": (lambda g, y: g.op("Mul", y, _flat(g, y), name="bad"), "do not broadcast"),
    "pool rank": (lambda g, y: g.op("AveragePool", _flat(g, y), kernel_shape=[2], name="bad"), "0-D pooling"),
    "global rank": (lambda g, y: g.op("GlobalAveragePool", _flat(g, y), name="bad"), "pools a tensor of rank 2"),
    "pool kernel": (lambda g, y: g.op("AveragePool", y, kernel_shape=[3, 2], name="bad"), "kernel 3x2"),
    "batchnorm": (lambda g, y: g.op("BatchNormalization", g.op("GlobalAveragePool", y),
                                    *(g.weight(4) for _ in range(4)), name="bad"), "does not directly follow"),
    "hard": (lambda g, y: g.op("Add", y, g.const(3.0), name="bad"), "that does not finish"),
    "two biases": (lambda g, y: g.op("Add", g.conv(y, 4, 4, 1, bias=True, name="bad"), g.const(np.zeros((4, 1, 1)))),
                   "more than one per-channel bias"),
    "fc scale": (lambda g, y: g.op("Mul", g.op("Gemm", _flat(g, y), g.weight(256, 3), name="bad"),
                                   g.const(np.ones(3))), "a per-channel scale after it"),
    "sigmoid twice": (lambda g, y: g.op("Sigmoid", g.op("Sigmoid", y), name="bad"), "an activation (sigmoid) after"),
    "residual": (lambda g, y: g.op("Add", y, g.op("Add", y, g.conv(y, 4, 4, 1)), name="bad"),
                 "later operand is not the output of a layer"),
    "computed bound": (lambda g, y: g.op("Clip", y, g.op("GlobalAveragePool", y), name="bad"),
                       "but it is computed from the input"),
    "unknown on constants": (lambda g, y: g.op("Reshape", y, g.op("Einsum", g.const([1, -1], np.int64),
                                                                  equation="i->i"), name="bad"),
                             "op type Einsum on constants"),
    "cannot compute": (lambda g, y: g.op("Reshape", y, g.op("Reshape", g.const([1, -1, 2], np.int64),
                                                            g.const([2], np.int64)), name="bad"),
                       "which cannot be computed"),
    "too large": (lambda g, y: g.op("Reshape", y, g.op("ConstantOfShape", g.const([10**5, 10**5], np.int64)),
                                    name="bad"), "a constant of 10,000,000,000 elements"),
}


@pytest.mark.parametrize("case", sorted(MALFORMED))
def test_a_malformed_graph_is_refused_naming_the_node(tmp_path, case):
    build, fragment = MALFORMED[case]
    g = Graph((1, 3, 8, 8))
    line = refused(g.save(tmp_path / "bad.onnx", build(g, g.conv(g.x, 3, 4, 1))), fragment)
    assert " 'bad')" in line


def test_constants_that_cannot_be_computed_are_an_error_only_when_needed(tmp_path):
    g = Graph((1, 3, 8, 8))
    g.op("Einsum", g.const([1.0]), equation="i->i")                                     # never needed
    g.op("Reshape", g.const([1, 2, 3], np.int64), g.const([7], np.int64))            # never needed
    g.op("Relu", g.op("Identity", g.op("Einsum", g.const([1.0]), equation="i->i")))  # unknown in, unknown out
    layer, = layers_of(g.save(tmp_path / "unused.onnx", g.conv(g.x, 3, 4, 1)))
    assert layer.out_shape == (4, 8, 8)


@pytest.mark.parametrize("tamper, fragment", [
    (lambda t: (t.ClearField("raw_data"), setattr(t, "data_location", TensorProto.EXTERNAL),
                t.external_data.add(key="location", value="w.bin")), "which is in external data"),
    (lambda t: setattr(t, "raw_data", b"\0" * 3), "whose data does not match its type and dims"),
])
def test_a_constant_whose_value_cannot_be_read_is_refused_where_it_is_needed(tmp_path, tamper, fragment):
    g = Graph((1, 3, 8, 8))
    y = g.op("Mul", g.conv(g.x, 3, 4, 1), g.const(3.0, name="three"), name="scale")
    tamper(g.initializers[-1])
    refused(g.save(tmp_path / "tampered.onnx", y), "(Mul 'scale')", fragment)


def test_an_attribute_referring_to_a_function_is_refused(tmp_path):
    g = Graph((1, 3, 8, 8))
    y = g.op("Transpose", g.conv(g.x, 3, 4, 1), name="bad")
    attr = g.nodes[-1].attribute.add()
    attr.name, attr.ref_attr_name, attr.type = "perm", "outer", onnx.AttributeProto.INTS
    refused(g.save(tmp_path / "ref.onnx", y), "(Transpose 'bad')", "refers to a function's attribute")


def test_an_nhwc_input_with_symbolic_sides_takes_the_resolution(tmp_path):
    g = Graph(("batch", "height", "width", 3))
    y = g.conv(g.op("Transpose", g.x, perm=[0, 3, 1, 2]), 3, 4, 3, stride=2, pads=[1, 1, 1, 1])
    model = read_onnx(g.save(tmp_path / "nhwc.onnx", y), (20, 30))
    assert model.input_shape == (3, 20, 30) and model.ops[-1].out_shape == (4, 10, 15)
    g = Graph(("batch", "c", 8, "c2"))
    refused(g.save(tmp_path / "channels.onnx", g.op("Relu", g.x)), "no fixed channel count")


def test_ops_that_a_layer_cannot_take_are_refused_from_any_front_end():
    def op(kind, inputs, **fields):
        return Op(index=1, name="n", op_type="T", kind=kind, inputs=inputs, output="y", in_shape=(4,),
                  out_shape=(4,), **fields)

    for bad, fragment in ((op("free", ("a", "b")), "moves data from 2 computed tensors"),
                          (op("eltwise", ("a", "b", "c"), operator="add"), "an element-wise add of 3 computed tensors"),
                          (op("gemm", ("a",), weights=5), "5 weights and 0 biases"),
                          (op("gap", ("a",)), "pools a tensor of shape [4]")):
        with pytest.raises(GraphError, match=r"^m: node 1 \(T 'n'\): ") as caught:
            to_layers([bad], "m")
        assert fragment in str(caught.value)


FOLDED = [
    ("Div", [np.array([-7, 7, 6]), np.array([2, 2, -4])], {}, np.array([-3, 3, -1])),
    ("Div", [np.array([3.0]), np.array([2.0])], {}, np.array([1.5])),
    ("Pow", [np.array([2, 3]), np.array([3, 2])], {}, np.array([8, 9])),
    ("Max", [np.array([1, 5]), np.array([3, 2]), np.array([0, 9])], {}, np.array([3, 9])),
    ("Min", [np.array([1, 5]), np.array([3, 2])], {}, np.array([1, 2])),
    ("Equal", [np.array([1, 2]), np.array([1, 3])], {}, np.array([True, False])),
    ("Less", [np.array([1, 2]), np.array([2, 2])], {}, np.array([True, False])),
    ("Greater", [np.array([1, 3]), np.array([2, 2])], {}, np.array([False, True])),
    ("And", [np.array([True, True]), np.array([True, False])], {}, np.array([True, False])),
    ("Or", [np.array([False, False]), np.array([True, False])], {}, np.array([True, False])),
    ("Not", [np.array([True, False])], {}, np.array([False, True])),
    ("Where", [np.array([True, False]), np.array([1, 2]), np.array([3, 4])], {}, np.array([1, 4])),
    ("Neg", [np.array([1, -2])], {}, np.array([-1, 2])),
    ("Abs", [np.array([1, -2])], {}, np.array([1, 2])),
    ("Sqrt", [np.array([4.0, 9.0])], {}, np.array([2.0, 3.0])),
    ("Reciprocal", [np.array([4.0])], {}, np.array([0.25])),
    ("Floor", [np.array([1.5, -1.5])], {}, np.array([1.0, -2.0])),
    ("Ceil", [np.array([1.5, -1.5])], {}, np.array([2.0, -1.0])),
    ("Relu", [np.array([1.0, -1.0])], {}, np.array([1.0, 0.0])),
    ("Clip", [np.array([-1.0, 3.0, 9.0]), np.array(0.0), np.array(6.0)], {}, np.array([0.0, 3.0, 6.0])),
    ("Clip", [np.array([-1.0, 9.0])], {"min": 0.0}, np.array([0.0, 9.0])),
    ("Range", [np.array(1), np.array(7), np.array(2)], {}, np.array([1, 3, 5])),
    ("Expand", [np.array([[1], [2]]), np.array([2, 3])], {}, np.array([[1, 1, 1], [2, 2, 2]])),
    ("ReduceProd", [np.array([[2, 3], [4, 5]])], {"keepdims": 0}, np.array(120)),
    ("ReduceSum", [np.array([[2, 3], [4, 5]]), np.array([1])], {"keepdims": 0}, np.array([5, 9])),
    ("ReduceMax", [np.array([[2, 3], [4, 5]])], {"axes": [0]}, np.array([[4, 5]])),
    ("ReduceMin", [np.array([[2, 3], [4, 5]])], {}, np.array([[2]])),
    ("Flatten", [np.zeros((2, 3, 4))], {"axis": -1}, np.zeros((6, 4))),
    ("Squeeze", [np.zeros((1, 3, 1))], {}, np.zeros(3)),
    ("Unsqueeze", [np.zeros(3)], {"axes": [0, -1]}, np.zeros((1, 3, 1))),
    ("Transpose", [np.arange(6).reshape(2, 3)], {}, np.arange(6).reshape(2, 3).T),
    ("Size", [np.zeros((2, 5))], {}, np.array(10)),
    ("Shape", [np.zeros((2, 5, 7))], {"start": 1}, np.array([5, 7])),
    ("CastLike", [np.array([1.7]), np.array([0])], {}, np.array([1])),
    ("Slice", [np.arange(10), np.array([-1]), np.array([-9223372036854775807]), np.array([0]), np.array([-2])], {},
     np.array([9, 7, 5, 3, 1])),
    ("Slice", [np.arange(10)], {"starts": [2], "ends": [5]}, np.array([2, 3, 4])),
    ("Gather", [np.array([5, 6, 7]), np.array([-1, 0])], {}, np.array([7, 5])),
]


@pytest.mark.parametrize("op, inputs, attrs, expected", FOLDED, ids=[f"{row[0]}-{i}" for i, row in enumerate(FOLDED)])
def test_constant_folding_follows_the_onnx_definitions(op, inputs, attrs, expected):
    from mnsize.onnxfold import FOLDERS

    opset = 9 if "starts" in attrs or "min" in attrs else 20
    (result,) = FOLDERS[op](inputs, attrs, opset)
    assert result.shape == expected.shape and result.dtype.kind == np.asarray(expected).dtype.kind
    assert np.array_equal(result, expected)


def test_constant_nodes_hold_every_kind_of_value():
    from mnsize.onnxfold import FOLDERS

    assert FOLDERS["Constant"]([], {"value_ints": [1, 2]}, 20)[0].tolist() == [1, 2]
    assert FOLDERS["Constant"]([], {"value_float": 0.5}, 20)[0].tolist() == 0.5
    assert FOLDERS["ConstantOfShape"]([np.array([2])], {}, 20)[0].tolist() == [0.0, 0.0]
    with pytest.raises(ValueError):
        FOLDERS["Constant"]([], {"value_strings": ["a"]}, 20)
    with pytest.raises(ValueError, match="too long a range"):
        FOLDERS["Range"]([np.array(0), np.array(10**9), np.array(1)], {}, 20)
