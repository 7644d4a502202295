"""The runtimes that run a network for timing: eager PyTorch, onnxruntime and
OpenVINO.

``session`` builds one network (BatchNorm folded, mnsize.expand.deployed) in
one runtime and gives back a call that runs one inference on a fixed random
float32 input and returns the output. Conventions:

- torch: mnsize.nn's model in eval mode under ``torch.inference_mode``, with
  ``torch.set_num_threads(threads)``; every layer is a Python module call, so
  a network pays a dispatch per module (``has_call_overhead``);
- onnxruntime: mnsize.onnxexport's graph in an ``InferenceSession`` on the
  CPU provider, every graph optimisation on, ``threads`` intra-op threads and
  one inter-op thread;
- openvino: the same graph compiled for ``CPU`` with the ``LATENCY``
  performance hint and ``threads`` inference threads, run by one infer request.

The ONNX graph has batch 1, so onnxruntime and OpenVINO time batch 1 only and
refuse any other. Whatever the runtime, the C allocator keeps freed memory in
the process (keep_freed_memory), so that no run page-faults memory afresh.
Each runtime's package is imported when it is first needed.
"""

from __future__ import annotations

import os
from typing import Any, Callable

from .errors import MnsizeError
from .expand import Layer, deployed

RUNTIMES = ("torch", "onnxruntime", "openvino")
#: the extra of pyproject.toml that installs each runtime
EXTRAS = {"torch": "torch", "onnxruntime": "onnx", "openvino": "openvino"}

M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3  # glibc's mallopt parameters


def keep_freed_memory() -> str:
    """Make the C allocator keep freed memory in the process; say what was done.

    By default glibc serves large blocks with fresh memory maps and hands
    memory back to the system as soon as enough of it is free, with thresholds
    that move with what the process freed before, so a network's activations
    are page-faulted in afresh on some runs and not on others, and its timings
    differ between runs and between processes (docs/latency.md). With both
    thresholds fixed high, every run after the warm-up reuses the memory of
    the one before, as a deployment runtime with a memory arena does. Elsewhere
    than glibc this does nothing and says so."""
    import ctypes

    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):
        return "system default"
    mallopt.argtypes, mallopt.restype = (ctypes.c_int, ctypes.c_int), ctypes.c_int
    for limit in (2**30, 2**25):  # some glibc versions refuse a map threshold above 32 MiB
        if mallopt(M_MMAP_THRESHOLD, limit) == 1 and mallopt(M_TRIM_THRESHOLD, 2 * limit) == 1:
            return f"freed memory kept (malloc thresholds {limit // 2**20} MiB)"
    return "system default"


def check_runtime(name: str) -> None:
    if name not in RUNTIMES:
        raise MnsizeError(f"unknown runtime {name!r}: choose one of {', '.join(RUNTIMES)}")


def _import(name: str):
    """The runtime's package, or an MnsizeError naming the extra that installs it."""
    check_runtime(name)
    if name == "torch":
        from .crosscheck import import_torch

        return import_torch()
    try:
        if name == "onnxruntime":
            import onnxruntime as module
        else:
            import openvino as module
    except ImportError:
        raise MnsizeError(f"the {name} runtime needs the {name} package: "
                          f"pip install \"mnsize[{EXTRAS[name]}]\"") from None
    return module


def prepare(name: str) -> None:
    """Import everything ``session`` needs for runtime ``name`` without building
    anything: a child process forked afterwards (mnsize.bench) inherits the
    imports instead of paying for them again (importing onnx takes 0.65 s on
    the machine of docs/latency.md, once per child)."""
    import importlib

    _import(name)
    if name == "torch":
        importlib.import_module(".nn", __package__)
        return
    from .onnxexport import import_onnx

    import_onnx()  # an MnsizeError naming the extra where onnx is missing
    importlib.import_module("numpy.random")  # the input


def runtime_version(name: str) -> str:
    """The runtime and its version, e.g. ``onnxruntime 1.32.0`` (torch keeps its
    build suffix, ``torch 2.13.0+cpu``; OpenVINO's build number is dropped)."""
    version = str(_import(name).__version__)
    return f"{name} {version.split('-')[0] if name == 'openvino' else version}"


def has_call_overhead(name: str) -> bool:
    """Whether the runtime pays a fixed cost per layer call on top of the layer's
    work: eager PyTorch dispatches every module from Python; onnxruntime and
    OpenVINO run a compiled graph."""
    check_runtime(name)
    return name == "torch"


def session(name: str, layers: tuple[Layer, ...], input_shape: tuple[int, int, int], threads: int,
            batch: int = 1) -> Callable[[], Any]:
    """One network built in runtime ``name``: a call that runs one inference on a
    fixed random input of ``batch`` × ``input_shape`` and returns the output.
    The caller checks the memory it may need (mnsize.bench) before this."""
    module = _import(name)
    if name != "torch" and batch != 1:
        raise MnsizeError(f"the {name} runtime times batch 1 only (the ONNX graph mnsize writes has batch 1); "
                          f"use --runtime torch for batch {batch}")
    keep_freed_memory()
    folded = deployed(layers)
    if name == "torch":
        return _torch_session(module, folded, input_shape, threads, batch)
    import numpy as np

    from .onnxexport import export_onnx

    model = export_onnx(folded, "mnsize_bench")
    x = np.random.default_rng(0).standard_normal((1, *input_shape), dtype=np.float32)
    if name == "onnxruntime":
        return _onnxruntime_session(module, model, x, threads)
    return _openvino_session(module, model, x, threads)


def _torch_session(torch, layers, input_shape, threads: int, batch: int):
    from .nn import build_layers

    torch.set_num_threads(threads)
    model, x = build_layers(layers).eval(), torch.randn(batch, *input_shape)

    def run():
        with torch.inference_mode():
            return model(x)

    return run


def _onnxruntime_session(ort, model: bytes, x, threads: int):
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.intra_op_num_threads, options.inter_op_num_threads = threads, 1
    options.log_severity_level = 3  # errors only: its warnings are not mnsize's output
    inference = ort.InferenceSession(model, options, providers=["CPUExecutionProvider"])
    feed = {inference.get_inputs()[0].name: x}
    return lambda: inference.run(None, feed)[0]


def _openvino_session(ov, model: bytes, x, threads: int):
    import tempfile

    core = ov.Core()
    # read_model takes a path for ONNX; the file is read whole before it goes
    with tempfile.TemporaryDirectory(prefix="mnsize-") as folder:
        path = os.path.join(folder, "model.onnx")
        with open(path, "wb") as file:
            file.write(model)
        network = core.read_model(path)
    compiled = core.compile_model(network, "CPU", {"PERFORMANCE_HINT": "LATENCY", "INFERENCE_NUM_THREADS": threads})
    request = compiled.create_infer_request()
    request.set_input_tensor(ov.Tensor(x))

    def run():
        request.infer(share_outputs=True)  # outputs as views, not copies
        return request.get_output_tensor(0).data

    return run
