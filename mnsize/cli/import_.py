"""mnsize import: a real model (an ONNX file, a PyTorch module) written as a spec."""

from __future__ import annotations

import os

import click

from .base import MnsizeCommand
from .options import ResolutionType


@click.command("import", cls=MnsizeCommand)
@click.argument("source", metavar="FILE.onnx|MODULE:CALLABLE")
@click.option("--out", "-o", required=True, type=click.Path(dir_okay=False), help="The spec file to write (.yaml).")
@click.option("--force", is_flag=True, help="Replace --out if it exists.")
@click.option("--kwargs", metavar="TEXT", help="Keyword arguments for the callable: 'width_mult=0.75'.")
@click.option("--res", "-r", "resolution", type=ResolutionType(), default=None,
              help="Input size where the model does not fix one (a symbolic ONNX input; a PyTorch module). "
                   "[default: 224]")
@click.option("--name", metavar="NAME", help="The spec's name. [default: the file's or callable's]")
def import_command(source, out, force, kwargs, resolution, name):
    """Write a real model as a spec: the YAML of configs/, with its blocks.

    SOURCE is an ONNX file, or a PyTorch module built by calling
    package.module:callable (this imports and runs that code), traced on the
    meta device. Depthwise separable pairs and inverted residual blocks (with
    or without squeeze-and-excite) become one row each; equal rows one row
    with repeat. The model as it is becomes the spec's α = 1. What a spec
    cannot say is refused, naming the layer.

    \b
    mnsize import model.onnx --out my_net.yaml
    mnsize import my_pkg.models:my_net --kwargs 'num_classes=10' --out my_net.yaml
    """
    from ..errors import MnsizeError
    from ..files import check_destination, same_file, write_atomic
    from ..importer import imported, spec_text
    from ..sources import is_callable_target, read_layers
    from ..spec import parse_spec

    if os.path.lexists(out) and not force:
        raise MnsizeError(f"{out}: the file exists; give --force to replace it")
    if not is_callable_target(source) and same_file(out, source):
        raise MnsizeError(f"{out}: the output would overwrite {source}, the model read; give another file name")
    check_destination(out, what="spec")
    model = read_layers(source, resolution, kwargs)
    text = spec_text(imported(model.layers, name or model.name, os.path.basename(source),
                              (model.layers[0].in_shape[0], *model.resolution)))
    parse_spec(text, out)  # what is written reads back as a spec
    write_atomic(out, text)
    click.echo(f"wrote {out}: {model.name}, {len(model.layers)} layers in "
               f"{text.count(chr(10) + '  - ')} rows at {model.resolution[0]}x{model.resolution[1]}", err=True)
