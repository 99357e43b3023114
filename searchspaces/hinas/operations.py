"""HiNAS candidate operations: the op table keyed by primitive name (journal
Sec. 3.1, Table 1's operation set; official one_stage_nas/darts/operations.py).

The primitive name is the one key shared by the op table (`OPS`), the
primitive lists and the genotype. Every op maps C channels to C channels at
the same spatial size: HiNAS never downsamples (journal, Sec. 3.1).
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable

import torch
from torch import nn

from searchspaces.hinas.deform import DeformConvBN

# Journal version (7 ops, code and paper). The CVPR set has a deformable 3x3
# conv (DCNv2, deform.py) instead of sep_5x5 / dil_5x5 (CVPR Sec. 2.1).
JOURNAL_PRIMITIVES: tuple[str, ...] = (
    "conv_3x3",
    "sep_3x3",
    "sep_5x5",
    "dil_3x3",
    "dil_5x5",
    "skip",
    "none",
)
CVPR_PRIMITIVES: tuple[str, ...] = ("conv_3x3", "sep_3x3", "dil_3x3", "def_3x3", "skip", "none")

ACTIVATIONS = ("leaky_relu", "relu")


def make_activation(name: str) -> nn.Module:
    """LeakyReLU(0.2) in the journal, ReLU in the CVPR paper. Never in-place:
    one state feeds several ops."""
    if name == "leaky_relu":
        return nn.LeakyReLU(0.2)
    if name == "relu":
        return nn.ReLU()
    raise ValueError(f"unknown activation {name!r} (known: {', '.join(ACTIVATIONS)})")


class ConvBN(nn.Sequential):
    """activation -> kxk conv (no bias, optional dilation) -> BatchNorm."""

    def __init__(
        self, channels: int, kernel: int, dilation: int, affine: bool, activation: str
    ) -> None:
        padding = dilation * (kernel - 1) // 2
        super().__init__(OrderedDict(
            activation=make_activation(activation),
            conv=nn.Conv2d(channels, channels, kernel, padding=padding, dilation=dilation,
                           bias=False),
            norm=nn.BatchNorm2d(channels, affine=affine),
        ))

    def before_norm(self, activated: torch.Tensor) -> torch.Tensor:
        """What runs between the activation and the last BatchNorm (the fused forms)."""
        return self.conv(activated)


class SepConv(nn.Sequential):
    """Two repeats of [activation -> depthwise kxk -> pointwise 1x1 -> BatchNorm]."""

    def __init__(self, channels: int, kernel: int, affine: bool, activation: str) -> None:
        def depthwise() -> nn.Conv2d:
            return nn.Conv2d(channels, channels, kernel, padding=kernel // 2, groups=channels,
                             bias=False)

        super().__init__(OrderedDict(
            activation=make_activation(activation),
            depthwise=depthwise(),
            pointwise=Pointwise(channels, channels),
            middle_norm=nn.BatchNorm2d(channels, affine=affine),
            middle_activation=make_activation(activation),
            second_depthwise=depthwise(),
            second_pointwise=Pointwise(channels, channels),
            norm=nn.BatchNorm2d(channels, affine=affine),
        ))

    def before_norm(self, activated: torch.Tensor) -> torch.Tensor:
        """What runs between the first activation and the last BatchNorm (the fused forms)."""
        hidden = self.middle_norm(self.pointwise(self.depthwise(activated)))
        return self.second_pointwise(self.second_depthwise(self.middle_activation(hidden)))


class Pointwise(nn.Conv2d):
    """1x1 convolution without bias; on a channels_last input it runs as one matrix product
    over the pixels (B*H*W, C_in) @ (C_in, C_out). Single-threaded, with a small batch,
    PyTorch ran these 1x1 convs on its slow path, converting NHWC to NCHW and back
    (measured 1.1-1.6x slower fwd + bwd at 10-40 channels)."""

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__(in_channels, out_channels, 1, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.is_contiguous() or not x.is_contiguous(memory_format=torch.channels_last):
            return super().forward(x)
        batch, channels, height, width = x.shape
        pixels = x.permute(0, 2, 3, 1).reshape(-1, channels)  # (B*H*W, C_in), no copy
        out = pixels @ self.weight.view(self.out_channels, channels).t()  # (B*H*W, C_out)
        return out.view(batch, height, width, -1).permute(0, 3, 1, 2)  # NHWC (B, C_out, H, W)


class Zero(nn.Module):
    """The `none` op: no connection."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.zeros_like(x)


OpFactory = Callable[[int, bool, str], nn.Module]

# name -> factory(channels, affine, activation)
OPS: dict[str, OpFactory] = {
    "conv_3x3": lambda c, affine, act: ConvBN(c, 3, 1, affine, act),
    "sep_3x3": lambda c, affine, act: SepConv(c, 3, affine, act),
    "sep_5x5": lambda c, affine, act: SepConv(c, 5, affine, act),
    "dil_3x3": lambda c, affine, act: ConvBN(c, 3, 2, affine, act),
    "dil_5x5": lambda c, affine, act: ConvBN(c, 5, 2, affine, act),
    "def_3x3": lambda c, affine, act: DeformConvBN(c, affine, make_activation(act)),
    "skip": lambda c, affine, act: nn.Identity(),
    "none": lambda c, affine, act: Zero(),
}
