"""What a user would otherwise run: import torch, build 1.0-MobileNet-224 by
hand (conv-BN-ReLU blocks, no mnsize), count it with one peer tool, print its
two numbers.

    python benchmarks/peer_count.py torch|ptflops|thop|fvcore|torchinfo
"""

import contextlib
import io
import sys
import warnings

import torch
from torch import nn

warnings.filterwarnings("ignore")


def conv_bn(c_in, c_out, kernel, stride, groups=1):
    return nn.Sequential(nn.Conv2d(c_in, c_out, kernel, stride, kernel // 2, groups=groups, bias=False),
                         nn.BatchNorm2d(c_out), nn.ReLU(inplace=True))


def mobilenet_v1(classes=1000):
    blocks = [(64, 1), (128, 2), (128, 1), (256, 2), (256, 1), (512, 2)] + [(512, 1)] * 5 + [(1024, 2), (1024, 1)]
    layers, c_in = [conv_bn(3, 32, 3, 2)], 32
    for c_out, stride in blocks:
        layers += [conv_bn(c_in, c_in, 3, stride, groups=c_in), conv_bn(c_in, c_out, 1, 1)]
        c_in = c_out
    return nn.Sequential(*layers, nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(c_in, classes))


def count(tool: str, model: nn.Module) -> tuple[int, int]:
    x = torch.randn(1, 3, 224, 224)
    if tool == "torch":
        from torch.utils.flop_counter import FlopCounterMode

        counter = FlopCounterMode(display=False)
        with torch.inference_mode(), counter:
            model(x)
        return counter.get_total_flops(), sum(p.numel() for p in model.parameters())
    if tool == "ptflops":
        from ptflops import get_model_complexity_info

        with contextlib.redirect_stdout(io.StringIO()):
            return get_model_complexity_info(model, (3, 224, 224), as_strings=False, print_per_layer_stat=False)
    if tool == "thop":
        from thop import profile

        with contextlib.redirect_stdout(io.StringIO()):
            macs, params = profile(model, inputs=(x,), verbose=False)
        return int(macs), int(params)
    if tool == "fvcore":
        from fvcore.nn import FlopCountAnalysis, parameter_count

        analysis = FlopCountAnalysis(model, x)
        analysis.unsupported_ops_warnings(False)
        analysis.uncalled_modules_warnings(False)
        return analysis.total(), parameter_count(model)[""]
    if tool == "torchinfo":
        from torchinfo import summary

        stats = summary(model, input_size=(1, 3, 224, 224), verbose=0)
        return stats.total_mult_adds, stats.total_params
    raise SystemExit(f"unknown tool {tool!r}")


if __name__ == "__main__":
    print(*count(sys.argv[1], mobilenet_v1().eval()))
