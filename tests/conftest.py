from __future__ import annotations

import os

import pytest

# A bug in mnsize surfaces as a traceback in the tests (and in the processes
# they start), never as the one-line 'internal error' users get.
os.environ.setdefault("MNSIZE_DEBUG", "1")

from mnsize import count, expand, load_spec, parse_spec


@pytest.fixture(scope="session")
def v1():
    return load_spec("mobilenet_v1")


def report_of(model: str, alpha="1.0", resolution=None, classes=None):
    return count(expand(load_spec(model), alpha, resolution, classes))


def spec_text(layers: str, header: str | None = None) -> str:
    """A small spec document around a layers block (for loader tests)."""
    return (header or (
        "name: tiny\nsource: test\ninput: {channels: 3, resolution: 32}\n"
        "width: {rule: floor}\nclasses: 10\n")) + "layers:\n" + layers


@pytest.fixture
def tiny():
    return lambda layers, header=None: parse_spec(spec_text(layers, header), "tiny.yaml")
