"""A PyTorch module counted on its own: the independent side of
``mnsize verify --against package.module:callable``.

``module_atoms`` runs one forward pass on the meta device under
``torch.utils.flop_counter.FlopCounterMode``, with forward hooks on every Conv2d
and Linear. An Atom's mult-adds are the FLOPs FlopCounterMode counts while that
module runs, halved (its convention: 2 FLOPs per multiply-accumulate, biases
not counted); its params the ``numel()`` of the module's own weight and bias;
its bn_params those of a BatchNorm module that runs next and reads its output.
Nothing here shares code with mnsize.costs. Importing this module does not
import torch.
"""

from __future__ import annotations


from .errors import GraphError
from .torchload import describe, import_torch, on_meta
from .graph import Atom


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
    torch = import_torch()
    from torch.utils.flop_counter import FlopCounterMode

    name = name or type(module).__name__
    elided_types = tuple(getattr(torch.nn, kind) for kind in ELIDED)
    with on_meta(module) as model:
        counter = FlopCounterMode(display=False, depth=None)
        recorder = _Recorder(model, counter, torch)
        elided = [sub for sub in model.modules() if type(sub) in elided_types and "forward" not in vars(sub)]
        try:
            for sub in elided:
                sub.forward = _passthrough
            with torch.inference_mode(), counter:
                model(torch.empty((1, *input_shape), device="meta"))
        except Exception as exc:
            raise GraphError(f"{name}: its forward pass on the meta device raised {describe(exc)}") from None
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

