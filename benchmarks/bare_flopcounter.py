"""The reference for `mnsize verify`'s speed: what a user would otherwise run.

A bare script that imports torch, builds 1.0-MobileNet-224 by hand (conv-BN-ReLU
blocks, no mnsize) and counts it with torch.utils.flop_counter.FlopCounterMode.
Prints mult-adds (FLOPs / 2) and parameters.
"""

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode


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


model = mobilenet_v1().eval()
counter = FlopCounterMode(display=False)
with torch.inference_mode(), counter:
    model(torch.randn(1, 3, 224, 224))
print(counter.get_total_flops() // 2, sum(p.numel() for p in model.parameters()))
