"""mnsize: exact cost analysis and model sizing for MobileNets.

    >>> from mnsize import load_model, expand, count
    >>> report = count(expand(load_model("mobilenet_v1"), alpha="0.5", resolution=128))
    >>> report.madds, report.params
    (49160192, 1320648)
"""

from .costs import Report, count
from .errors import MnsizeError, SpecError
from .expand import Config, Layer, expand
from .models import builtin_names, load_model
from .spec import Spec, load_spec, parse_spec

__version__ = "0.1.0"

__all__ = [
    "Config", "Layer", "MnsizeError", "Report", "Spec", "SpecError", "builtin_names", "count", "expand",
    "load_model", "load_spec", "parse_spec", "__version__",
]
