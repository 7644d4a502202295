"""Every bound mnsize holds its input and its work to, in one place.

Each is far above anything a real MobileNet needs and low enough that the
work it admits takes seconds and fits in memory (benchmarks/fit_scale.py
and benchmarks/fuzz_speed.py measure the edges). Input past a bound is
refused, naming the bound, before the work starts; docs/robustness.md lists
them for users.
"""

from __future__ import annotations

from fractions import Fraction

# --- the networks a spec describes
#: a width multiplier
MAX_ALPHA = Fraction(100)
#: a side of the input, in pixels
MAX_SIDE = 1_000_000
#: a layer's width at alpha 1, and the number of classes
MAX_CHANNELS = 1_000_000
# (far beyond any real network, they keep every count meaningful and every
# PyTorch size within int64)
#: rows of a spec's layers table, and the layers they repeat to
MAX_LAYERS = 2_000
MAX_EXPANDED = 20_000
#: a row's repeat, a kernel's side, a stride, a width rule's divisor
MAX_REPEAT = 1_000
MAX_KERNEL = 99
MAX_STRIDE = 1_000_000
MAX_DIVISOR = 1024

# --- the files mnsize reads
#: a YAML file (spec, budgets, profile), and how deep it may nest: a MobileNet
#: spec is a few KiB, parsing stays well under a second, and the C YAML
#: composer, which recurses once per level, is never asked to nest deeper than
#: it safely can
MAX_FILE_BYTES = 128 * 2**10
MAX_DEPTH = 64
#: digits of an integer in YAML (far beyond any count, and below the shortest
#: limit Python can be set to convert: 640 digits, 4,300 by default), and in a
#: baseline's JSON
MAX_YAML_DIGITS = 300
MAX_BASELINE_DIGITS = 30
#: a baseline, and a job summary mnsize appends to
MAX_BASELINE_BYTES = 16 * 2**20
MAX_APPEND_BASE_BYTES = 16 * 2**20
#: entries in one budgets file
MAX_BUDGETS = 1_000
#: a number as typed (characters), and its decimal exponent: longer numbers
#: are refused before any arithmetic (Python converts at most 4,300 digits,
#: and 10**(10**9) would take forever)
MAX_NUMBER_CHARS = 100
MAX_EXPONENT = 30

# --- the work one command does
#: values in a list or range of alphas or resolutions
MAX_GRID_VALUES = 10_000
#: cells one grid shows
MAX_GRID_CELLS = 10_000
#: candidates x layers in one search
MAX_LAYER_EVALUATIONS = 100_000_000
#: alphas x layers: each layer is built and costed at each alpha
MAX_LAYER_EXPANSIONS = 150_000
#: the same with a latency profile, whose per-layer prediction is probed at each alpha
MAX_PROFILED_LAYER_EXPANSIONS = 15_000
#: threads a latency profile or a timing may use; the cores and the timed
#: networks a profile may say it had
MAX_THREADS = 256
MAX_CORES = 1_000_000
MAX_NETWORKS = 1_000_000
#: a forward pass on the cpu device (verify), what timing a network may need
#: (bench, profile, fit --measure), and torch's own limit on a tensor
MAX_CPU_BYTES = 4 * 2**30
MAX_BENCH_BYTES = 8 * 2**30
MAX_TORCH_ELEMENTS = 2**61  # sizes in bytes are int64: 2**63 bytes of fp32

# --- real models (ONNX files, PyTorch modules)
#: an ONNX file's size: weights are megabytes (a MobileNetV2 is 14 MB, an
#: EfficientNet-B7 260 MB), so these files get their own bound, not MAX_FILE_BYTES
MAX_ONNX_BYTES = 2 * 2**30
#: nodes in a graph (a Keras MobileNetV3 export has about 1,000)
MAX_GRAPH_NODES = 100_000
#: a constant computed while reading a graph (shape arithmetic, a folded weight)
MAX_FOLDED_ELEMENTS = 2**24
#: the text of a callable's keyword arguments (--kwargs), refused before it is parsed
MAX_KWARGS_CHARS = 10_000
