"""mnsize export: a spec's network written as an ONNX file, for other runtimes to time."""

from __future__ import annotations

import os

import click

from .base import MnsizeCommand, load_network
from .options import FILE, WholeRange, model_options


@click.command("export", cls=MnsizeCommand)
@model_options
@click.option("--format", "-f", "fmt", type=click.Choice(["onnx"]), default="onnx", show_default=True,
              help="The file format.")
@click.option("--out", "-o", required=True, type=FILE, help="The file to write (.onnx).")
@click.option("--force", is_flag=True, help="Replace --out if it exists.")
@click.option("--opset", type=WholeRange(1, 10_000), default=17, show_default=True,
              help="The ONNX opset the file declares (11 or later; GELU needs 20).")
@click.option("--seed", type=WholeRange(0, 2**32 - 1), default=0, show_default=True,
              help="Seed of the random weights.")
def export_command(model, alpha, resolution, rho, classes, fmt, out, force, opset, seed):
    """Write the network as an ONNX file: every layer as the paper counts it,
    with random weights and BatchNorm folded, for latency tools on other
    runtimes and devices.

    The graph takes an NCHW float32 input named 'input' of batch 1 and
    gives 'logits'; dropout is left out. The file is checked with
    onnx.checker before it is written, atomically.

    \b
    mnsize export --model mobilenet_v2 --alpha 0.5 --res 160 --out v2.onnx
    mnsize export --model efficientnet_b0 --res 240x320 --out b0.onnx --opset 13
    """
    from ..costs import count
    from ..errors import MnsizeError
    from ..expand import deployed
    from ..files import check_destination, write_atomic
    from ..models import is_onnx, spec_path
    from ..onnxexport import export_onnx
    from ..render.base import describe
    from ..text import printable

    if is_onnx(model):
        raise MnsizeError(f"{model}: already an ONNX file; export writes a spec's network (give a spec "
                          "name or a .yaml file)")
    if os.path.lexists(out) and not force:
        raise MnsizeError(f"{out}: the file exists; give --force to replace it")
    network = load_network(model, alpha, resolution, rho, classes)
    check_destination(out, inputs=[spec_path(model)], what="ONNX file")
    config = network.config
    height, width = config.resolution
    doc = (f"{config.model} at alpha {float(config.alpha):g}, {height}x{width}, {config.classes} classes: "
           f"random weights (seed {seed}), BatchNorm folded; written by mnsize for timing, not for predictions")
    layers = deployed(network.layers)
    write_atomic(out, export_onnx(layers, config.model, opset=opset, seed=seed, doc=doc))
    click.echo(f"wrote {printable(out)}: {describe(config)}; opset {opset}, {count(layers).params:,} random "
               f"parameters (seed {seed}), BatchNorm folded", err=True)
