"""A PyTorch module as a real model: a user's callable loaded, its forward
traced into Ops (mnsize.graph), and its weighted modules counted on their own.

``load_callable("pkg.mod:make_net", "width_mult=0.75")`` imports the module (the
current directory importable, as ``python -m`` makes it) and calls the callable
with keyword arguments that are literals only, parsed with ``ast``, never
evaluated. Naming a callable runs the user's code.

``trace`` reads the module's forward with ``torch.export`` on the meta device
(shapes without memory) and maps each ATen call on data computed from the input
to an Op, named after the module that ran it (``nn_module_stack``); an ATen op
with no mapping is refused, naming the node, never counted as a silent zero.

``module_atoms`` is the independent count ``verify --against`` compares a spec
with: one forward pass on the meta device under
``torch.utils.flop_counter.FlopCounterMode``, forward hooks on every Conv2d and
Linear. An Atom's mult-adds are the FLOPs FlopCounterMode counts while that
module runs, halved (its convention: 2 FLOPs per multiply-accumulate, biases
not counted); its params the ``numel()`` of the module's own weight and bias;
its bn_params those of a BatchNorm module that runs next and reads its output.
Nothing here shares code with mnsize.costs. Importing this module does not
import torch.
"""

from __future__ import annotations

import ast
import copy
import importlib
import io
import logging
import math
import os
import sys
import warnings
from contextlib import contextmanager, redirect_stderr

from .errors import GraphError, show
from .graph import Atom, Op

#: the keywords that carry a callable's width multiplier, the first given wins
WIDTH_KEYWORDS = ("width_mult", "alpha", "width_multiplier")
#: longer --kwargs text is refused before it is parsed
MAX_KWARGS_CHARS = 10_000
LITERALS = "numbers, strings, True, False, None, tuples and lists"


# --------------------------------------------------------------------------- loading a callable


def load_callable(target: str, kwargs: str | None = None):
    """The nn.Module that ``package.module:callable`` (a dotted attribute after
    the colon: ``pkg.mod:Net.small``) returns when called with ``kwargs``.

    Every failure, from a malformed target to the callable raising, is a
    GraphError naming the target."""
    module_name, attributes = _split_target(target)
    arguments = parse_kwargs(kwargs, target)
    torch = _import_torch()
    saved = list(sys.path)
    sys.path.insert(0, os.getcwd())
    importlib.invalidate_caches()  # a module written since the last import in this process
    try:
        try:
            found = importlib.import_module(module_name)
        except ModuleNotFoundError as exc:
            raise GraphError(f"{target}: cannot import {module_name!r}: no module named {exc.name!r}") from None
        except (Exception, SystemExit) as exc:
            raise GraphError(f"{target}: importing {module_name!r} raised {_describe(exc)}") from None
        owner = module_name
        for attribute in attributes:
            try:
                found = getattr(found, attribute)
            except AttributeError:
                raise GraphError(f"{target}: {owner!r} has no attribute {attribute!r}") from None
            except Exception as exc:
                raise GraphError(f"{target}: reading {attribute!r} of {owner!r} raised {_describe(exc)}") from None
            owner = f"{owner}.{attribute}"
        if not callable(found):
            raise GraphError(f"{target}: {owner!r} ({type(found).__name__}) is not callable")
        try:
            model = found(**arguments)
        except (Exception, SystemExit) as exc:
            raise GraphError(f"{target}: calling it raised {_describe(exc)}") from None
    finally:
        sys.path[:] = saved
    if not isinstance(model, torch.nn.Module):
        raise GraphError(f"{target}: it returned an object of type {type(model).__name__}, not a torch.nn.Module")
    return model


def _split_target(target: str) -> tuple[str, list[str]]:
    module_name, colon, attribute = target.partition(":")
    parts = module_name.split(".") + attribute.split(".")
    if not colon or not all(part.isidentifier() for part in parts):
        raise GraphError(f"{show(target)}: expected package.module:callable (dotted names, one colon)")
    return module_name, attribute.split(".")


def parse_kwargs(text: str | None, target: str | None = None) -> dict[str, object]:
    """``width_mult=0.75, num_classes=10`` as a dict: keyword arguments whose
    values are literals (numbers, strings, booleans, None, tuples and lists),
    read with ``ast``; nothing in the text is evaluated."""
    where = f"{target}: --kwargs" if target else "--kwargs"
    if text is None or not text.strip():
        return {}
    if len(text) > MAX_KWARGS_CHARS:
        raise GraphError(f"{where} is {len(text):,} characters, more than {MAX_KWARGS_CHARS:,}")
    source = f"f({text})"
    try:
        call = ast.parse(source, mode="eval").body
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        call = None
    if not (isinstance(call, ast.Call) and isinstance(call.func, ast.Name) and not call.args
            and all(keyword.arg for keyword in call.keywords)):
        raise GraphError(f"{where} {show(text)}: expected name=value pairs separated by commas")
    arguments = {}
    for keyword in call.keywords:
        if keyword.arg in arguments:
            raise GraphError(f"{where}: {keyword.arg} is given twice")
        try:
            value = ast.literal_eval(keyword.value)
        except (ValueError, TypeError, SyntaxError, RecursionError, MemoryError):
            value = _REFUSED
        if not _plain(value):
            shown = show(ast.get_source_segment(source, keyword.value))
            raise GraphError(f"{where}: {keyword.arg}={shown[1:-1]}: the values must be literals ({LITERALS})")
        arguments[keyword.arg] = value
    return arguments


_REFUSED = object()


def _plain(value: object) -> bool:
    if value is None or isinstance(value, (bool, int, float, str)):
        return True
    return isinstance(value, (tuple, list)) and all(_plain(item) for item in value)


def alpha_from_kwargs(kwargs: str | None) -> str | None:
    """The width multiplier the callable is given (``width_mult``, ``alpha`` or
    ``width_multiplier``), as text for mnsize.expand.to_alpha; None if none is."""
    arguments = parse_kwargs(kwargs)
    for key in WIDTH_KEYWORDS:
        if key in arguments:
            value = arguments[key]
            if isinstance(value, bool) or not isinstance(value, (int, float, str)):
                raise GraphError(f"--kwargs: {key}={show(value)} is not a width multiplier")
            return value if isinstance(value, str) else repr(value)
    return None


def _import_torch():
    """torch, or a GraphError that says how to install it."""
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message="Failed to initialize NumPy")
            import torch
    except ImportError:
        raise GraphError('reading a PyTorch module needs PyTorch, which is not installed: pip install '
                         '"mnsize[torch]" (on a CPU-only machine pin the CPU build: pip install "torch==2.13.0" '
                         '"mnsize[torch]")') from None
    return torch


def _describe(exc: BaseException) -> str:
    """An exception as one short line: its type and the first line of its message."""
    message = _first_line(exc)
    return f"{type(exc).__name__}: {message}" if message else type(exc).__name__


def _first_line(exc: BaseException) -> str:
    lines = str(exc).strip().splitlines()
    line = lines[0].strip() if lines else ""
    return line if len(line) <= 160 else line[:157] + "..."


@contextmanager
def _on_meta(module):
    """The module on the meta device in eval mode: itself where it is already
    there (its train/eval flags restored afterwards), else a deep copy whose
    parameters and buffers are replaced by meta tensors before copying, so
    the weights are neither copied nor touched."""
    torch = _import_torch()
    tensors = [*module.parameters(), *module.buffers()]
    if all(tensor.is_meta for tensor in tensors):
        modes = [(sub, sub.training) for sub in module.modules()]
        module.eval()
        try:
            yield module
        finally:
            for sub, training in modes:
                sub.training = training
        return
    memo: dict[int, object] = {}
    try:
        for param in module.parameters():
            memo[id(param)] = torch.nn.Parameter(torch.empty_like(param, device="meta"), param.requires_grad)
        for buffer in module.buffers():
            memo[id(buffer)] = torch.empty_like(buffer, device="meta")
        copied = copy.deepcopy(module, memo).eval()
    except Exception as exc:
        raise GraphError(f"{type(module).__name__}: cannot copy it to the meta device: {_describe(exc)}") from None
    yield copied


# --------------------------------------------------------------------------- tracing into Ops


def trace(module, input_shape: tuple[int, int, int], name: str | None = None) -> tuple[Op, ...]:
    """The module's forward on one ``input_shape`` (C, H, W) image as Ops, in
    the order the exported graph runs them; ``name`` (default: the module's
    class) starts every error message.

    The graph is the one ``torch.export.export`` gives; where one of its ops
    has no mapping, the graph is decomposed to core ATen
    (``run_decompositions``) and read again, and if that fails too the
    first graph's node is named."""
    torch = _import_torch()
    name = name or type(module).__name__
    with _on_meta(module) as model, _quiet():
        example = (torch.empty((1, *input_shape), device="meta"),)
        try:
            program = torch.export.export(model, example)
        except Exception as exc:
            raise GraphError(f"{name}: torch.export cannot trace it: {_describe(exc)}") from None
    try:
        return _Walker(program, name).ops()
    except GraphError as first:
        try:
            with _quiet():
                decomposed = program.run_decompositions()
            return _Walker(decomposed, name).ops()
        except Exception:
            raise first from None


@contextmanager
def _quiet():
    """torch.export logs, warns and prints (the partial graph, to stderr) what
    it guards on and cannot trace through; the one line mnsize reports says
    what matters."""
    previous = logging.root.manager.disable
    logging.disable(logging.ERROR)
    try:
        with warnings.catch_warnings(), redirect_stderr(io.StringIO()):
            warnings.simplefilter("ignore")
            yield
    finally:
        logging.disable(previous)


#: ATen ops (by name, an in-place variant's trailing "_" dropped) that move or
#: relabel data and compute nothing the paper counts
FREE_OPS = frozenset({
    "view", "_unsafe_view", "reshape", "flatten", "permute", "transpose", "t", "expand", "clone", "contiguous",
    "alias", "detach", "lift_fresh_copy", "_to_copy", "to", "_assert_tensor_metadata", "squeeze", "unsqueeze",
    "dropout", "native_dropout", "feature_dropout", "alpha_dropout", "getitem", "softmax", "_softmax",
    "log_softmax", "_log_softmax", "cat", "constant_pad_nd", "pad"})
ACTIVATION_OPS = ("relu", "relu6", "hardswish", "hardsigmoid", "sigmoid", "silu", "gelu")
ELTWISE_OPS = {"add": "add", "sub": "sub", "rsub": "sub", "mul": "mul", "div": "div"}


class _Walker:
    """Reads an exported program's call_function nodes, in order, into Ops.

    A node is on computed data when one of its inputs is the model's input or
    another such node; the others (weights transposed, shapes) are folded, as
    a runtime folds them, and give no Op."""

    def __init__(self, program, name: str) -> None:
        self.program = program
        self.name = name
        signature = program.graph_signature
        self.computed: set[str] = set(signature.user_inputs)
        self.constants = dict(signature.inputs_to_lifted_tensor_constants)
        self.alias: dict[str, str] = {}  # a tensor an in-place op changed -> that op's output

    def ops(self) -> tuple[Op, ...]:
        ops, index = [], 0
        for node in self.program.graph.nodes:
            if node.op != "call_function":
                continue
            index += 1
            inputs = [source for source in node.all_input_nodes if source.name in self.computed]
            if not inputs:
                continue
            target = node.target
            op_type = str(target) if hasattr(target, "_overloadpacket") else getattr(target, "__name__", str(target))
            key = target._overloadpacket.__name__ if hasattr(target, "_overloadpacket") else op_type
            in_place = key.endswith("_") and not key.endswith("__")
            key = key[:-1] if in_place else key
            name = _module_path(node) or node.name
            where = f"{self.name}: node {index} ({op_type} {name!r})"
            handler = HANDLERS.get(key)
            if handler is None:
                raise GraphError(f"{where}: no mapping for this op; mnsize reads convolutions, linear layers, "
                                 f"BatchNorm, activations, element-wise arithmetic, pooling and data movement")
            fields = handler(self, node, key, _arguments(node), where)
            ops.append(Op(index, name, op_type, inputs=tuple(self.resolve(source.name) for source in inputs),
                          output=node.name, in_shape=_shape(inputs[0]), out_shape=_shape(node), **fields))
            self.computed.add(node.name)
            if in_place and node.args and hasattr(node.args[0], "name"):
                self.alias[node.args[0].name] = node.name
        return tuple(ops)

    def resolve(self, name: str) -> str:
        while name in self.alias:
            name = self.alias[name]
        return name

    def is_computed(self, value) -> bool:
        return getattr(value, "name", None) in self.computed

    def weight(self, value, where: str, role: str) -> tuple[int, ...]:
        """The shape of a weight operand: a parameter or constant, never computed."""
        if self.is_computed(value):
            raise GraphError(f"{where}: its {role} is computed from the input, not a parameter")
        if not hasattr(getattr(value, "meta", {}).get("val"), "shape"):
            raise GraphError(f"{where}: its {role} is not a tensor of known shape")
        return _full_shape(value)

    def scalar(self, value) -> float | None:
        """A one-element constant's number, where the program holds its data."""
        tensor = self.program.constants.get(self.constants.get(getattr(value, "name", None)))
        return float(tensor.reshape(-1)[0]) if tensor is not None and not tensor.is_meta else None


def _arguments(node) -> list:
    """The node's arguments by position, keyword arguments and defaults filled in from the op's schema."""
    args = list(node.args)
    schema = getattr(node.target, "_schema", None)
    for argument in schema.arguments[len(args):] if schema is not None else ():
        default = argument.default_value if argument.has_default_value() else None
        args.append(node.kwargs.get(argument.name, default))
    return args


def _module_path(node) -> str:
    """The path of the innermost module whose forward ran the node ('' at the top)."""
    stack = node.meta.get("nn_module_stack")
    return list(stack.values())[-1][0].split("@")[0] if stack else ""


def _full_shape(node) -> tuple[int, ...]:
    """The shape of the tensor a node makes (of the first, where it makes several)."""
    value = node.meta.get("val")
    value = value[0] if isinstance(value, (tuple, list)) and value else value
    return tuple(int(size) for size in value.shape) if hasattr(value, "shape") else ()


def _shape(node) -> tuple[int, ...]:
    """Per image: the batch dimension dropped."""
    return _full_shape(node)[1:]


def _pair(value) -> tuple[int, int]:
    if isinstance(value, (list, tuple)):
        return (int(value[0]), int(value[-1])) if value else (1, 1)
    return (int(value), int(value))


def _conv(walker: _Walker, node, key: str, args: list, where: str) -> dict:
    if key == "convolution":
        stride, dilation, transposed, groups = args[3], args[5], args[6], args[8]
    else:
        stride, dilation, transposed, groups = args[3], args[5], False, args[6]
    weight = walker.weight(args[1], where, "weight")
    if transposed or len(weight) != 4:
        raise GraphError(f"{where}: a {'transposed' if transposed else f'{len(weight) - 2}-D'} convolution; "
                         f"mnsize counts 2-D convolutions")
    bias = walker.weight(args[2], where, "bias") if args[2] is not None else ()
    return dict(kind="conv", kernel=weight[2:], stride=_pair(stride), dilation=_pair(dilation), groups=int(groups),
                weights=math.prod(weight), bias=math.prod(bias) if bias else 0)


def _gemm(walker: _Walker, node, key: str, args: list, where: str) -> dict:
    """linear(x, W, b); addmm(b, x, W); mm and matmul with one constant operand."""
    if key == "linear":
        operands, bias = args[1:2], args[2]
    else:
        operands, bias = (args[1:3], args[0]) if key == "addmm" else (args[:2], None)
    weights = [value for value in operands if not walker.is_computed(value)]
    if not weights:
        raise GraphError(f"{where}: a product of two computed tensors (as attention has) is not a layer "
                         f"mnsize counts")
    bias_shape = walker.weight(bias, where, "bias") if bias is not None else ()
    return dict(kind="gemm", weights=math.prod(walker.weight(weights[0], where, "weight")),
                bias=math.prod(bias_shape) if bias is not None else 0)


def _activation(walker: _Walker, node, key: str, args: list, where: str) -> dict:
    if key in ("hardtanh", "clamp", "clamp_min"):
        low, high = args[1], (args[2] if key != "clamp_min" else None)
        bounds = {(0, 6): "relu6", (0, None): "relu"}
        if (low, high) not in bounds:
            raise GraphError(f"{where}: {key} to [{low}, {high}] is none of the activations mnsize reads "
                             f"(ReLU is [0, inf), ReLU6 [0, 6])")
        return dict(kind="act", act=bounds[low, high])
    return dict(kind="act", act=key)


def _eltwise(walker: _Walker, node, key: str, args: list, where: str) -> dict:
    operator = ELTWISE_OPS[key]
    first, second = args[0], args[1]
    if walker.is_computed(first) and walker.is_computed(second):
        return dict(kind="eltwise", operator=operator)
    mine, other = (first, second) if walker.is_computed(first) else (second, first)
    if isinstance(other, (bool, int, float)):
        return dict(kind="eltwise", operator=operator, constant="scalar", value=float(other))
    shape, full = walker.weight(other, where, "operand"), _full_shape(mine)
    if math.prod(shape) == 1:
        return dict(kind="eltwise", operator=operator, constant="scalar", value=walker.scalar(other))
    padded = (1,) * (len(full) - len(shape)) + shape
    varying = [axis for axis, size in enumerate(padded) if size != 1]
    if len(padded) == len(full) and len(varying) == 1 and varying[0] in (1, len(full) - 1) and \
            padded[varying[0]] == full[varying[0]]:
        return dict(kind="eltwise", operator=operator, constant="channel")
    raise GraphError(f"{where}: {operator} with a constant of shape {list(shape)}, neither one number nor one "
                     f"per channel of the {list(full[1:])} input")


def _mean(walker: _Walker, node, key: str, args: list, where: str) -> dict:
    rank = len(_full_shape(node.args[0]))
    dims = args[1] if len(args) > 1 and isinstance(args[1], (list, tuple)) else list(range(rank))
    if rank == 4 and {int(dim) % rank for dim in dims} == {2, 3}:
        return dict(kind="gap")
    raise GraphError(f"{where}: a mean over dims {list(dims)} of a rank-{rank} tensor is not a global average "
                     f"pooling over H and W")


def _adaptive(walker: _Walker, node, key: str, args: list, where: str) -> dict:
    shape = _full_shape(node.args[0])
    if len(shape) != 4:
        raise GraphError(f"{where}: an adaptive average pooling of a rank-{len(shape)} tensor")
    height, width = shape[2:]
    out = _pair(args[1])
    if out == (1, 1):
        return dict(kind="gap")
    if out == (height, width):
        return dict(kind="free")
    if height % out[0] or width % out[1]:
        raise GraphError(f"{where}: an adaptive average pooling from {height}x{width} to {out[0]}x{out[1]} has "
                         f"windows of unequal sizes")
    window = (height // out[0], width // out[1])
    return dict(kind="avgpool", kernel=window, stride=window)


def _pool(walker: _Walker, node, key: str, args: list, where: str) -> dict:
    kernel = _pair(args[1])
    stride = _pair(args[2]) if args[2] else kernel
    return dict(kind="maxpool" if key.startswith("max") else "avgpool", kernel=kernel, stride=stride)


def _fixed(kind: str):
    return lambda walker, node, key, args, where: dict(kind=kind)


HANDLERS = {
    "conv2d": _conv, "convolution": _conv,
    "linear": _gemm, "addmm": _gemm, "mm": _gemm, "matmul": _gemm,
    **dict.fromkeys(("batch_norm", "_native_batch_norm_legit_no_training", "native_batch_norm",
                     "_native_batch_norm_legit"), _fixed("batchnorm")),
    **dict.fromkeys(ACTIVATION_OPS + ("hardtanh", "clamp", "clamp_min"), _activation),
    **dict.fromkeys(ELTWISE_OPS, _eltwise),
    "mean": _mean, "adaptive_avg_pool2d": _adaptive, "_adaptive_avg_pool2d": _adaptive,
    "avg_pool2d": _pool, "max_pool2d": _pool, "max_pool2d_with_indices": _pool,
    **dict.fromkeys(FREE_OPS, _fixed("free")),
}


# --------------------------------------------------------------------------- the independent count


def module_atoms(module, input_shape: tuple[int, int, int], name: str | None = None) -> tuple[Atom, ...]:
    """Every Conv2d and Linear call of one forward pass on a ``input_shape``
    (C, H, W) image, in the order they run, as Atoms counted by PyTorch alone.

    A module called twice gives two Atoms (the second named ``path (call 2)``).
    A BatchNorm that does not read a convolution's or linear layer's output
    as the next module to run is an Atom of kind "bn" holding its parameters
    as bn_params. FLOPs outside every Conv2d and Linear (a product of two
    computed tensors), and any other module that runs with parameters of its
    own, are refused, naming the module: nothing is dropped in silence.

    The element-wise modules of PyTorch itself (BatchNorm, the activations
    in ELIDED, Dropout) pass their input through during the pass: on the meta
    device their kernels are Python, most of a forward's time, while they
    change no shape and FlopCounterMode counts nothing for them. Their hooks
    still run, so BatchNorm is still seen reading its input."""
    torch = _import_torch()
    from torch.utils.flop_counter import FlopCounterMode

    name = name or type(module).__name__
    elided_types = tuple(getattr(torch.nn, kind) for kind in ELIDED)
    with _on_meta(module) as model:
        counter = FlopCounterMode(display=False, depth=None)
        recorder = _Recorder(model, counter, torch)
        elided = [sub for sub in model.modules() if type(sub) in elided_types and "forward" not in vars(sub)]
        try:
            for sub in elided:
                sub.forward = _passthrough
            with torch.inference_mode(), counter:
                model(torch.empty((1, *input_shape), device="meta"))
        except Exception as exc:
            raise GraphError(f"{name}: its forward pass on the meta device raised {_describe(exc)}") from None
        finally:
            recorder.remove()
            for sub in elided:
                del sub.forward
    recorder.check(name, counter.get_flop_counts())
    return tuple(Atom(*call[:6]) for call in recorder.calls)


#: torch.nn modules that change no shape and run no op FlopCounterMode counts
ELIDED = ("BatchNorm1d", "BatchNorm2d", "BatchNorm3d", "ReLU", "ReLU6", "Hardswish", "Hardsigmoid", "Sigmoid",
          "SiLU", "GELU", "Dropout", "Dropout2d")


def _passthrough(x):
    return x


class _Recorder:
    """Forward hooks that note each weighted module's call: the FLOPs counted
    while it ran, its parameters' numel(), its output's shape."""

    def __init__(self, model, counter, torch) -> None:
        self.counter = counter
        self.calls: list[list] = []  # layer, kind, madds, params, bn_params, shape, module keys it ran in
        self.starts: list[tuple[int, set[str]]] = []
        self.last_output = None
        self.times: dict[str, int] = {}
        self.others: dict[str, str] = {}
        self.handles = []
        weighted = (torch.nn.Conv2d, torch.nn.Linear)
        seen = set()
        for path, sub in model.named_modules(remove_duplicate=False):
            if id(sub) in seen:
                continue
            seen.add(id(sub))
            own = sum(param.numel() for param in sub.parameters(recurse=False))
            if isinstance(sub, weighted):
                kind = "conv" if isinstance(sub, torch.nn.Conv2d) else "fc"
                self.handles += [sub.register_forward_pre_hook(self.before),
                                 sub.register_forward_hook(self.after(path, kind, own))]
            elif isinstance(sub, torch.nn.modules.batchnorm._BatchNorm):
                self.handles.append(sub.register_forward_hook(self.norm(path, own)))
            elif own:
                self.handles.append(sub.register_forward_hook(self.other(path, type(sub).__name__, own)))

    def remove(self) -> None:
        for handle in self.handles:
            handle.remove()

    def label(self, path: str) -> str:
        self.times[path] = self.times.get(path, 0) + 1
        return path if self.times[path] == 1 else f"{path} (call {self.times[path]})"

    def before(self, module, args) -> None:
        # FlopCounterMode's own hooks ran first: its parents hold this module's key
        self.starts.append((self.counter.get_total_flops(), set(self.counter.mod_tracker.parents)))

    def after(self, path: str, kind: str, params: int):
        def hook(module, args, output) -> None:
            start, parents = self.starts.pop()
            flops = self.counter.get_total_flops() - start
            self.calls.append([self.label(path), kind, flops // 2, params, 0, _per_image(output), parents, flops])
            self.last_output = output
        return hook

    def norm(self, path: str, params: int):
        def hook(module, args, output) -> None:
            if self.last_output is not None and args and args[0] is self.last_output and not self.calls[-1][4]:
                self.calls[-1][4] = params
            else:
                self.calls.append([self.label(path), "bn", 0, 0, params, _per_image(output), set(), 0])
            self.last_output = None
        return hook

    def other(self, path: str, kind: str, params: int):
        def hook(module, args, output) -> None:
            self.others.setdefault(path or "the model itself", f"{kind}, {params:,} parameters")
        return hook

    def check(self, name: str, flop_counts: dict) -> None:
        if self.others:
            path, what = next(iter(self.others.items()))
            raise GraphError(f"{name}: module {path!r} ({what}) is neither a Conv2d, a Linear nor a BatchNorm; "
                             f"verify --against compares those modules' weights only")
        outside = {}
        for key, per_op in flop_counts.items():
            left = sum(per_op.values()) - sum(call[7] for call in self.calls if key in call[6])
            if left and key != "Global":
                outside[key] = (left, per_op)
        if outside:
            key = max(outside, key=lambda key: key.count("."))
            left, per_op = outside[key]
            where = f"module {key.split('.', 1)[1]!r}" if "." in key else "the model's own forward"
            raise GraphError(f"{name}: {left // 2:,} mult-adds ({', '.join(map(str, per_op))}) run in {where}, "
                             f"outside every Conv2d and Linear; verify --against compares those modules only")


def _per_image(output) -> tuple[int, ...]:
    """The output's shape without the batch; a linear layer's (F,) as (F, 1, 1), as a spec writes an fc's."""
    shape = tuple(int(size) for size in getattr(output, "shape", ())[1:])
    return (shape[0], 1, 1) if len(shape) == 1 else shape
