"""Real models in, timed whole-process as a user runs them.

1. Counting a MobileNetV2 ONNX file: `mnsize table --model v2.onnx` against
   onnx-tool's profile of the same file (`onnx_tool.model_profile`, what its
   README shows). Target: mnsize <= 0.5 x onnx-tool. Both tools' totals are
   printed side by side.
2. `mnsize verify --model mobilenet_v1 --against peer_count:mobilenet_v1`
   (the hand-built PyTorch V1 of benchmarks/peer_count.py, loaded by name)
   against the bare FlopCounterMode count of that module
   (`peer_count.py torch`). Target: <= 1.3 x.

onnx-tool is a benchmark dependency only: pip install onnx-tool.

    python benchmarks/real_models.py [--runs 7]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

from timing import MNSIZE, Run, measure

HERE = Path(__file__).resolve().parent

_ONNX_TOOL = "import sys, onnx_tool; onnx_tool.model_profile(sys.argv[1])"
_ONNX_TOOL_TOTALS = """\
import sys, onnx_tool
model = onnx_tool.Model(sys.argv[1], {"verbose": False})
graph = model.graph
graph.graph_reorder_nodes()
graph.shape_infer(None)
graph.profile()
print(int(round(graph.macs[0])), int(graph.params))
"""


def export_v2(folder: Path) -> Path:
    """mnsize's MobileNetV2 (1.0, 224), exported by torch.onnx.export in eval
    mode (BatchNorm folded into the convolutions' biases)."""
    path = folder / "mobilenet_v2.onnx"
    script = (
        "import sys, warnings, torch\n"
        "warnings.filterwarnings('ignore')\n"
        "from mnsize.nn import build_model\n"
        "model = build_model('mobilenet_v2').eval()\n"
        "torch.onnx.export(model, (torch.zeros(1, 3, 224, 224),), sys.argv[1], dynamo=False)\n")
    subprocess.run([sys.executable, "-c", script, str(path)], check=True, capture_output=True)
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=7)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="mnsize-real-") as scratch:
        v2 = export_v2(Path(scratch))
        ours = json.loads(subprocess.run([MNSIZE, "table", "--model", str(v2), "--format", "json"], check=True,
                                         capture_output=True, text=True).stdout)["totals"]
        theirs = subprocess.run([sys.executable, "-c", _ONNX_TOOL_TOTALS, str(v2)], check=True,
                                capture_output=True, text=True).stdout.split()
        print(f"MobileNetV2 1.0-224 exported by torch.onnx.export ({v2.stat().st_size / 2**20:.1f} MiB):")
        print(f"- mnsize table: {ours['madds']:,} mult-adds, {ours['params']:,} params "
              f"(+{ours['bn_params']:,} BatchNorm)")
        print(f"- onnx-tool:    {int(theirs[0]):,} MACs, {int(theirs[1]):,} params\n")
        table, tool = "mnsize table --model mobilenet_v2.onnx", "onnx_tool.model_profile(mobilenet_v2.onnx)"
        verify, bare = ("mnsize verify --against peer_count:mobilenet_v1",
                        "bare script: import torch, build V1, FlopCounterMode")
        medians = measure({
            table: [MNSIZE, "table", "--model", str(v2)],
            tool: [sys.executable, "-c", _ONNX_TOOL, str(v2)],
            verify: {"": Run([MNSIZE, "verify", "--model", "mobilenet_v1", "--against", "peer_count:mobilenet_v1"],
                             cwd=str(HERE))},
            bare: [sys.executable, str(HERE / "peer_count.py"), "torch"],
        }, args.runs, warmup=1)
    ratio = medians[table] / medians[tool]
    print(f"table --model x.onnx / onnx-tool: {ratio:.2f} (target <= 0.5): {'met' if ratio <= 0.5 else 'NOT met'}")
    ratio = medians[verify] / medians[bare]
    print(f"verify --against / bare FlopCounterMode: {ratio:.2f} (target <= 1.3): "
          f"{'met' if ratio <= 1.3 else 'NOT met'}")


if __name__ == "__main__":
    main()
