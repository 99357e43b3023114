"""FLOP utilisation of the HiNAS search step: its achieved FLOP rate over the rate of one
plain dense 3x3 convolution (40 -> 40 channels, forward + backward, same batch and patch
size) measured in the same process, alternately, with the same thread count.

A step's FLOPs are 3x its forward count by torch.utils.flop_counter.FlopCounterMode
(backward = grad input + grad weight); the counter sees only the convolutions, i.e. the
useful work of Eq. 1, identical for every form of the cell (edges stacked per source,
fused per edge, op by op; a 1x1 conv run as a matrix product counts the same). The dense conv's
rate is the better of its NCHW and channels_last runs. The official HiNAS code reaches
about 0.2 here.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from bench.hinas_supernet import SIZES, batch, build, interleaved_times, train_step, trial_process

THREADS = 1


def forward_flops(model: nn.Module, inputs: torch.Tensor) -> int:
    with FlopCounterMode(display=False) as counter, torch.no_grad():
        model(inputs)
    return counter.get_total_flops()


def dense_conv_step(conv: nn.Conv2d, inputs: torch.Tensor):
    def step() -> None:
        conv.zero_grad(set_to_none=True)
        inputs.grad = None
        conv(inputs).sum().backward()

    return step


def supernet_flop_utilization(size: str = "quick") -> dict:
    spec = SIZES[size]
    noisy, clean = batch(size)
    with trial_process(THREADS):
        supernet = build(size)
        step_flops = 3 * forward_flops(supernet, noisy)
        torch.manual_seed(0)
        conv = nn.Conv2d(40, 40, 3, padding=1, bias=False)
        features = torch.randn(spec["batch"], 40, spec["side"], spec["side"])
        conv_flops = 3 * forward_flops(conv, features)
        nchw = features.requires_grad_()
        nhwc = features.detach().to(memory_format=torch.channels_last).requires_grad_()
        conv_nhwc = nn.Conv2d(40, 40, 3, padding=1, bias=False).to(
            memory_format=torch.channels_last)
        steps = {"supernet": lambda: train_step(supernet, noisy, clean),
                 "conv_nchw": dense_conv_step(conv, nchw),
                 "conv_nhwc": dense_conv_step(conv_nhwc, nhwc)}
        times = interleaved_times(steps, spec["repeats"])
    supernet_rate = step_flops / times["supernet"]
    conv_rate = conv_flops / min(times["conv_nchw"], times["conv_nhwc"])
    detail = {"step_gflop": round(step_flops / 1e9, 2), "step_s": round(times["supernet"], 3),
              "supernet_gflops": round(supernet_rate / 1e9, 2),
              "conv_gflops": round(conv_rate / 1e9, 2),
              "conv_nchw_s": round(times["conv_nchw"], 4),
              "conv_nhwc_s": round(times["conv_nhwc"], 4),
              "threads": THREADS, "batch": spec["batch"], "patch": spec["side"], "size": size,
              "official": 0.2}
    return {"name": "supernet_flop_utilization", "value": round(supernet_rate / conv_rate, 3),
            "unit": "ratio", "target": 0.5, "detail": detail}
