"""PyTorch modules as real models (mnsize.torchgraph): a callable loaded from
its name, its forward traced into Ops, and its weighted modules counted by
FlopCounterMode and numel() for verify --against."""

from __future__ import annotations

import functools
import subprocess
import sys

import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

import mnsize.graph
from mnsize.costs import count
from mnsize.errors import GraphError, MnsizeError
from mnsize.expand import expand
from mnsize.models import load_spec
from mnsize.nn import build_model
from mnsize.torchcount import module_atoms
from mnsize.torchgraph import trace
from mnsize.torchload import alpha_from_kwargs, load_callable, parse_kwargs

BUILTINS = ("mobilenet_v1", "mobilenet_v2", "mobilenet_v3_large", "mobilenet_v3_small")

NETS = '''
import torch
from torch import nn

WIDTH = 3


class Net(nn.Module):
    def __init__(self, width_mult=1.0, num_classes=10):
        super().__init__()
        self.width_mult = width_mult
        self.conv = nn.Conv2d(3, max(1, int(8 * width_mult)), 3)
        self.fc = nn.Linear(max(1, int(8 * width_mult)), num_classes)

    @staticmethod
    def small():
        return Net(0.5, 4)

    def forward(self, x):
        return self.fc(self.conv(x).mean((2, 3)))


def make(width_mult=1.0, num_classes=10, name="net"):
    return Net(width_mult, num_classes)


def raises():
    raise ValueError("no such width: " + "x" * 300)


def not_a_module():
    return 42
'''


@pytest.fixture
def nets(tmp_path, monkeypatch):
    """A module file in a fresh directory that is the current one, imported by its name."""
    monkeypatch.chdir(tmp_path)
    name = f"nets_{tmp_path.name.replace('-', '_')}"
    (tmp_path / f"{name}.py").write_text(NETS)
    (tmp_path / f"{name}_broken.py").write_text("def make(:\n")
    (tmp_path / f"{name}_needs.py").write_text("import no_such_dependency_here\n")
    yield name
    for module in [m for m in sys.modules if m.startswith(name)]:
        del sys.modules[module]


# --------------------------------------------------------------------------- load_callable


def test_load_callable_imports_from_the_current_directory_and_passes_kwargs(nets):
    path = list(sys.path)
    model = load_callable(f"{nets}:make", "width_mult=0.5, num_classes=3, name='x'")
    assert isinstance(model, nn.Module) and model.width_mult == 0.5
    assert model.fc.out_features == 3 and model.conv.out_channels == 4
    assert sys.path == path
    small = load_callable(f"{nets}:Net.small")
    assert small.fc.out_features == 4 and small.width_mult == 0.5


@pytest.mark.parametrize("target, message", [
    ("no_colon_here", "expected package.module:callable"),
    (":make", "expected package.module:callable"),
    ("{nets}:", "expected package.module:callable"),
    ("{nets}:Net..small", "expected package.module:callable"),
    ("{nets}:make:again", "expected package.module:callable"),
    ("no_such_package_zz.models:make", "cannot import 'no_such_package_zz.models': no module named "
                                       "'no_such_package_zz'"),
    ("{nets}_needs:make", "no module named 'no_such_dependency_here'"),
    ("{nets}_broken:make", "importing '{nets}_broken' raised SyntaxError"),
    ("{nets}:missing", "'{nets}' has no attribute 'missing'"),
    ("{nets}:Net.missing", "'{nets}.Net' has no attribute 'missing'"),
    ("{nets}:WIDTH", "'{nets}.WIDTH' (int) is not callable"),
    ("{nets}:raises", "calling it raised ValueError: no such width: xxx"),
    ("{nets}:not_a_module", "it returned an object of type int, not a torch.nn.Module"),
])
def test_load_callable_errors_are_one_line_naming_the_target(nets, target, message):
    target = target.format(nets=nets)
    with pytest.raises(GraphError) as caught:
        load_callable(target)
    text = str(caught.value)
    assert message.format(nets=nets) in text
    assert text.startswith((target, repr(target)))
    assert "\n" not in text and len(text) < 300


@pytest.mark.parametrize("kwargs, message", [
    ("__import__('os')", "expected name=value pairs"),
    ("x=__import__('os')", "x=__import__('os'): the values must be literals"),
    ("width_mult=", "expected name=value pairs"),
    ("0.5", "expected name=value pairs"),
    ("x=1, x=2", "x is given twice"),
    ("**{'a': 1}", "expected name=value pairs"),
    ("a=1)(b=2", "expected name=value pairs"),
    ("x={1: 2}", "the values must be literals"),
    ("x=b'bytes'", "the values must be literals"),
    ("x=1+2j", "the values must be literals"),
    ("x=" + "[" * 5000 + "]" * 5000, "more than 10,000"),
])
def test_bad_kwargs_are_refused_before_anything_is_imported(nets, kwargs, message):
    with pytest.raises(GraphError, match=r"^" + nets + ":make: --kwargs") as caught:
        load_callable(f"{nets}:make", kwargs)
    assert message in str(caught.value)
    assert nets not in sys.modules


def test_kwargs_are_parsed_never_evaluated(tmp_path):
    assert parse_kwargs("width_mult=0.75, num_classes=10") == {"width_mult": 0.75, "num_classes": 10}
    assert parse_kwargs("a='s', b=True, c=None, d=(1, -2), e=[3.5, [4]], f=1e3") == \
        {"a": "s", "b": True, "c": None, "d": (1, -2), "e": [3.5, [4]], "f": 1000.0}
    assert parse_kwargs(None) == parse_kwargs("  ") == {}
    marker = tmp_path / "written"
    for text in (f"x=open({str(marker)!r}, 'w')", f"open({str(marker)!r}, 'w')", "x=(lambda: 1)()"):
        with pytest.raises(GraphError):
            parse_kwargs(text)
    assert not marker.exists()


def test_alpha_from_kwargs_reads_the_width_keywords():
    assert alpha_from_kwargs("width_mult=0.75, num_classes=10") == "0.75"
    assert alpha_from_kwargs("alpha=1") == "1"
    assert alpha_from_kwargs("width_multiplier='0.35'") == "0.35"
    assert alpha_from_kwargs("num_classes=10") is None
    assert alpha_from_kwargs(None) is None
    with pytest.raises(GraphError, match="width_mult=True is not a width multiplier"):
        alpha_from_kwargs("width_mult=True")


def test_importing_the_module_imports_no_torch_and_a_missing_torch_is_one_line(monkeypatch):
    code = "import sys, mnsize.torchgraph, mnsize.torchcount, mnsize.torchload; sys.exit('torch' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code]).returncode == 0
    monkeypatch.setitem(sys.modules, "torch", None)
    with pytest.raises(MnsizeError, match=r'^this command builds a PyTorch model and PyTorch is not installed: '
                                          r'pip install "mnsize\[torch\]"'):
        load_callable("my_pkg.models:net")


# --------------------------------------------------------------------------- trace


@functools.lru_cache(maxsize=None)
def traced(name: str):
    return trace(build_model(name, device="meta"), (3, 224, 224))


@pytest.mark.parametrize("name", BUILTINS)
def test_trace_of_a_builtin_holds_the_specs_weights_and_mult_adds(name):
    layers = expand(load_spec(name))
    totals = count(layers).totals
    ops = traced(name)
    weighted = [op for op in ops if op.kind in ("conv", "gemm")]
    assert sum(op.weights + op.bias for op in weighted) == totals.params
    # a convolution's mult-adds are its weights once per output position; a gemm's its weights
    assert sum(op.weights * (op.out_shape[1] * op.out_shape[2] if op.kind == "conv" else 1)
               for op in weighted) == totals.madds
    assert sum(2 * op.in_shape[0] for op in ops if op.kind == "batchnorm") == totals.bn_params
    se = [lay for lay in layers if lay.kind == "se"]
    assert len(weighted) == len(layers) - len(se) + 2 * len(se) - sum(lay.kind in ("avgpool", "maxpool", "dropout")
                                                                    for lay in layers)
    assert [op.name for op in weighted if op.kind == "conv"][:2] == ["conv1.conv", layers[1].name + ".conv"]
    assert weighted[-1].name == layers[-1].name + ".linear" and weighted[-1].out_shape == (1000,)
    residuals = [op for op in ops if op.kind == "eltwise" and op.operator == "add"]
    assert len(residuals) == sum(lay.residual for lay in layers)
    assert all(op.constant == "" for op in ops if op.kind == "eltwise")


def test_trace_reads_a_cpu_model_without_touching_it():
    model = build_model("mobilenet_v3_small", alpha="0.75", resolution=160).train()
    ops = trace(model, (3, 160, 160))
    assert all(p.device.type == "cpu" for p in model.parameters()) and model.training
    meta = trace(build_model("mobilenet_v3_small", alpha="0.75", device="meta"), (3, 160, 160))
    assert ops == meta
    assert sum(op.weights + op.bias for op in ops if op.kind in ("conv", "gemm")) == \
        count(expand(load_spec("mobilenet_v3_small"), "0.75", 160)).params


class Small(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 8, 3, stride=2, padding=2, dilation=2, groups=1, bias=False)
        self.bn = nn.BatchNorm2d(8)
        self.register_buffer("scale", torch.ones(8, 1, 1))
        self.dw = nn.Conv2d(8, 8, 5, padding=2, groups=8)
        self.fc = nn.Linear(8, 5)

    def forward(self, x):
        y = self.bn(self.conv(x))
        F.relu_(y)                    # in place: later reads of y read this op's output
        y = y * self.scale + 3
        y = F.hardtanh(self.dw(y), 0.0, 6.0) * torch.sigmoid(y)
        y = F.avg_pool2d(F.max_pool2d(y, 3, 2, 1), 2)
        return self.fc(torch.flatten(y.mean((2, 3), keepdim=True), 1))


def test_trace_maps_each_aten_op_to_an_op():
    ops = trace(Small(), (3, 32, 32))
    assert [(op.kind, op.name) for op in ops] == [
        ("conv", "conv"), ("batchnorm", "bn"), ("act", "relu_"), ("eltwise", "mul"), ("eltwise", "add"),
        ("conv", "dw"), ("act", "hardtanh"), ("act", "sigmoid"), ("eltwise", "mul_1"), ("maxpool", "max_pool2d"),
        ("avgpool", "avg_pool2d"), ("gap", "mean"), ("free", "flatten"), ("gemm", "fc")]
    conv, bn, relu, scale, shift, dw, relu6, sigmoid, gate, maxpool, avgpool, gap, flatten, fc = ops
    assert (conv.kernel, conv.stride, conv.dilation, conv.groups, conv.weights, conv.bias) == \
        ((3, 3), (2, 2), (2, 2), 1, 8 * 3 * 9, 0)
    assert conv.in_shape == (3, 32, 32) and conv.out_shape == (8, 16, 16) and conv.inputs == ("x",)
    assert (dw.kernel, dw.groups, dw.weights, dw.bias) == ((5, 5), 8, 8 * 25, 8)
    assert relu.act == "relu" and relu6.act == "relu6" and sigmoid.act == "sigmoid"
    assert scale.inputs == (relu.output,) and (scale.operator, scale.constant) == ("mul", "channel")
    assert (shift.operator, shift.constant, shift.value) == ("add", "scalar", 3.0)
    assert (gate.constant, set(gate.inputs)) == ("", {relu6.output, sigmoid.output})
    assert (maxpool.kernel, maxpool.stride, maxpool.out_shape) == ((3, 3), (2, 2), (8, 8, 8))
    assert (avgpool.kernel, avgpool.stride, avgpool.out_shape) == ((2, 2), (2, 2), (8, 4, 4))
    assert gap.out_shape == (8, 1, 1) and flatten.out_shape == (8,)
    assert (fc.weights, fc.bias, fc.in_shape, fc.out_shape) == (40, 5, (8,), (5,))
    assert [op.index for op in ops] == sorted(op.index for op in ops)


class Reads(nn.Module):
    """A forward whose only unmapped op (expand_as) core ATen writes as a mapped one."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 1)

    def forward(self, x):
        y = self.conv(x)
        return y + y.mean((2, 3), keepdim=True).expand_as(y)


def test_an_op_core_aten_decomposes_is_read_after_decomposition():
    ops = trace(Reads(), (3, 8, 8))
    assert [op.kind for op in ops] == ["conv", "gap", "free", "eltwise"]
    assert ops[0].op_type == "aten.convolution.default" and ops[0].weights == 12 and ops[0].bias == 4


class Module(nn.Module):
    def __init__(self, forward, **children):
        super().__init__()
        self.body = forward
        for name, child in children.items():
            self.add_module(name, child)

    def forward(self, x):
        return self.body(self, x)


@pytest.mark.parametrize("forward, children, message", [
    (lambda m, x: m.norm(x), {"norm": nn.LayerNorm(8)},
     r"node 1 \(aten.layer_norm.default 'norm'\): no mapping for this op"),
    (lambda m, x: x.flatten(2) @ x.flatten(2).transpose(1, 2), {},
     r"a product of two computed tensors"),
    (lambda m, x: F.hardtanh(x), {}, r"hardtanh to \[-1.0, 1.0\] is none of the activations"),
    (lambda m, x: m.up(x), {"up": nn.ConvTranspose2d(3, 3, 2)}, r"aten.conv_transpose2d.input 'up'"),
    (lambda m, x: x + torch.ones(3, 8, 8, device=x.device), {}, r"add with a constant of shape \[3, 8, 8\], neither one number"),
    (lambda m, x: x.mean(1), {}, r"a mean over dims \[1\] of a rank-4 tensor"),
    (lambda m, x: x if x.sum() > 0 else -x, {}, r"^Module: torch.export cannot trace it: "),
])
def test_trace_refuses_what_it_cannot_map_naming_the_node(forward, children, message, capfd):
    with pytest.raises(GraphError, match=message) as caught:
        trace(Module(forward, **children), (3, 8, 8))
    assert str(caught.value).startswith("Module: ") and "\n" not in str(caught.value)
    assert capfd.readouterr().err == ""


# --------------------------------------------------------------------------- module_atoms


def spec_atoms(name: str, alpha="1.0", resolution=None):
    """What the spec says each weighted module of mnsize.nn's model is:
    (name, kind, madds, params, bn_params, shape); a squeeze-and-excite layer
    is its two 1x1 convolutions, by the closed form."""
    atoms = []
    for row in count(expand(load_spec(name), alpha, resolution)).rows:
        lay, counts = row.layer, row.counts
        if lay.kind == "se":
            c, s = lay.in_shape[0], lay.squeeze
            atoms += [(f"{lay.name}.fc1", "conv", c * s, c * s + s, 0, (s, 1, 1)),
                      (f"{lay.name}.fc2", "conv", s * c, s * c + c, 0, (c, 1, 1))]
            assert 2 * c * s == counts.madds and 2 * c * s + s + c == counts.params
        elif lay.kind in ("conv", "dw", "pw", "fc"):
            module, kind = (f"{lay.name}.linear", "fc") if lay.kind == "fc" else (f"{lay.name}.conv", "conv")
            atoms.append((module, kind, counts.madds, counts.params, counts.bn_params, lay.out_shape))
    return atoms


def bare_count(model, input_shape):
    """FlopCounterMode and numel() alone: every module run for real, nothing hooked."""
    counter = FlopCounterMode(display=False)
    with counter:
        model(torch.zeros((1, *input_shape), device=next(model.parameters()).device))
    bn = sum(p.numel() for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)
             for p in m.parameters())
    return counter.get_total_flops() // 2, sum(p.numel() for p in model.parameters()) - bn, bn


@pytest.mark.parametrize("name, alpha, resolution", [(name, "1.0", None) for name in BUILTINS] + [
    ("mobilenet_v2", "0.5", 160), ("mobilenet_v3_large", "0.75", 192)])
def test_module_atoms_of_a_builtin_are_the_specs_weighted_layers(name, alpha, resolution):
    model = build_model(name, alpha, resolution, device="meta")
    side = resolution or 224
    atoms = module_atoms(model, (3, side, side))
    assert model.training and not any("forward" in vars(m) for m in model.modules())
    assert [(a.layer, a.kind, a.madds, a.params, a.bn_params, a.shape) for a in atoms] == \
        spec_atoms(name, alpha, resolution)
    assert (sum(a.madds for a in atoms), sum(a.params for a in atoms), sum(a.bn_params for a in atoms)) == \
        bare_count(model, (3, side, side))


def test_module_atoms_of_a_cpu_model_leave_it_as_it_was():
    model = build_model("mobilenet_v2", "0.35", 96).train()
    atoms = module_atoms(model, (3, 96, 96))
    assert atoms == module_atoms(build_model("mobilenet_v2", "0.35", 96, device="meta"), (3, 96, 96))
    assert model.training and all(p.device.type == "cpu" for p in model.parameters())
    assert not any("forward" in vars(m) for m in model.modules())
    assert (sum(a.madds for a in atoms), sum(a.params for a in atoms), sum(a.bn_params for a in atoms)) == \
        bare_count(model.eval(), (3, 96, 96))


class Shared(nn.Module):
    def __init__(self):
        super().__init__()
        self.pre = nn.BatchNorm2d(3)
        self.stem = nn.Conv2d(3, 8, 1)
        self.block = nn.Conv2d(8, 8, 3, padding=1, bias=False)
        self.bn = nn.BatchNorm2d(8)
        self.fc = nn.Linear(8, 6)
        self.fc_bn = nn.BatchNorm1d(6)

    def forward(self, x):
        x = self.stem(self.pre(x))
        x = self.block(self.bn(self.block(x)))          # called twice, BatchNorm after the first only
        return self.fc_bn(self.fc(x.mean((2, 3))))


def test_module_atoms_count_each_call_and_keep_stray_batchnorm():
    atoms = module_atoms(Shared(), (3, 10, 10))
    assert [(a.layer, a.kind, a.madds, a.params, a.bn_params, a.shape) for a in atoms] == [
        ("pre", "bn", 0, 0, 6, (3, 10, 10)),
        ("stem", "conv", 3 * 8 * 100, 32, 0, (8, 10, 10)),
        ("block", "conv", 9 * 64 * 100, 576, 16, (8, 10, 10)),
        ("block (call 2)", "conv", 9 * 64 * 100, 576, 0, (8, 10, 10)),
        ("fc", "fc", 48, 54, 12, (6, 1, 1)),
    ]


class Attention(nn.Module):
    def __init__(self):
        super().__init__()
        self.q = nn.Linear(4, 4)

    def forward(self, x):
        tokens = x.flatten(2).transpose(1, 2)
        return self.q(tokens) @ tokens.transpose(1, 2)


@pytest.mark.parametrize("model, message", [
    (nn.Sequential(nn.Conv2d(4, 4, 1), Attention()),
     r"^Sequential: 64 mult-adds \(aten.bmm\) run in module '1', outside every Conv2d and Linear"),
    (nn.Sequential(nn.Conv2d(4, 4, 1), nn.LayerNorm([4, 2, 2])),
     r"^Sequential: module '1' \(LayerNorm, 32 parameters\) is neither a Conv2d, a Linear nor a BatchNorm"),
    (Module(lambda m, x: x * x.sum().item()), r"^Module: its forward pass on the meta device raised RuntimeError"),
])
def test_module_atoms_refuse_what_they_cannot_attribute(model, message):
    with pytest.raises(GraphError, match=message) as caught:
        module_atoms(model, (4, 2, 2))
    assert "\n" not in str(caught.value)


# --------------------------------------------------------------------------- the traced layers


@pytest.mark.parametrize("name", BUILTINS)
def test_the_layers_recognised_in_a_trace_are_the_specs(name):
    spec = count(expand(load_spec(name)))
    layers = mnsize.graph.to_layers(traced(name), f"{name}:traced")
    found = count(layers)
    assert found.totals == spec.totals
    # layer for layer, but dropout, which computes nothing and leaves no op to find
    assert [(r.layer.kind, r.layer.out_shape, r.layer.act, r.layer.residual, r.counts) for r in found.rows] == \
        [(r.layer.kind, r.layer.out_shape, r.layer.act, r.layer.residual, r.counts) for r in spec.rows
         if r.layer.kind != "dropout"]
    # and weighted op for weighted op, as PyTorch counts the modules that ran
    assert [(a.kind, a.madds, a.params, a.bn_params, a.shape) for a in mnsize.graph.layer_atoms(layers)] == \
        [(a.kind, a.madds, a.params, a.bn_params, a.shape)
         for a in module_atoms(build_model(name, device="meta"), (3, 224, 224))]
