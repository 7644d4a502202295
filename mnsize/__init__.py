"""mnsize: exact cost analysis and model sizing for MobileNets.

    >>> import mnsize
    >>> layers = mnsize.expand(mnsize.load_spec("mobilenet_v1"), alpha="0.5", resolution=128)
    >>> report = mnsize.count(layers)
    >>> report.madds, report.params
    (49160192, 1320648)

``fit``, ``check`` and ``verify`` do the main job of the commands of those
names (mnsize.api, imported when first used: a command that needs none of
them does not pay for it).
"""

from .costs import Counts, Report, count
from .errors import MnsizeError, SpecError
from .expand import Config, Layer, expand
from .metrics import Limits
from .models import builtin_names, load_network, load_spec
from .spec import Spec, parse_spec

__version__ = "0.1.0"

__all__ = [
    "Config", "Counts", "Layer", "Limits", "MnsizeError", "Report", "Spec", "SpecError", "builtin_names", "check",
    "count", "expand", "fit", "load_network", "load_spec", "parse_spec", "verify", "__version__",
]


def __getattr__(name: str):
    if name in ("fit", "check", "verify"):
        from . import api

        return getattr(api, name)
    raise AttributeError(f"module 'mnsize' has no attribute {name!r}")
