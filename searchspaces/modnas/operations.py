"""MoD-NAS candidate operations: the candidate sets keyed by primitive name (MoD-NAS
Sec. 3.2).

MoD-NAS Sec. 3.2: every convolution starts with a ReLU and has no BatchNorm
(so the convolutions carry a bias); every interpolation is followed by a
convolution for channel conversion. Two named candidate sets
(`search_space.options.candidates`):

- `paper` (the default; the candidates of the paper's searched networks,
  appendix Tables 7 and 8): normal conv 3x3, separable 3x3 (ReLU -> depthwise
  3x3 -> pointwise 1x1), dilated 3x3 (dilation 2, full convolution), residual
  block (ReLU -> conv 3x3 -> ReLU -> conv 3x3, plus the identity; a 1x1
  projection when the kept widths differ, as in ResNet); down stride-2 conv
  3x3, nearest / area x0.5 + conv 3x3; up bilinear / nearest / area x2 +
  conv 3x3, transposed conv 3x3 stride 2 (deconvolution);
- `extended` (this project's earlier set, never shown in the paper): normal
  conv / separable / dilated at 3x3 and 5x5; down stride-2 conv 3x3, bilinear
  x0.5 + conv 3x3, max-pool 2 + conv 1x1; up transposed conv, pixel shuffle
  (conv 3x3 to 4C, then shuffle), bilinear / nearest x2 + conv 3x3.

`skip` joins the normal set only for the depth-by-skip baseline
(`depth_search: skip_op`). With concatenating skip joins every down op runs
as its convolution at the block's resolution, then the resampling
(`split_down`): the convolution's output is the skip of that level (a
stride-2 conv is the stride-1 conv subsampled). That is how the channel
counts of Tables 7/8 fit: the concatenations read the up-sampled features
plus the down-sampling layer's width (Table 7: 40 + 32 = 72, 32 + 24 = 56).

Every op maps `in_channels` to `out_channels`. `OPS[name].parameters(c_in,
c_out)` is the op's parameter count written out by hand: the derived network's
size can be computed from a genotype without building it (`plan.py`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch.nn.functional as F
from torch import nn

SKIP = "skip"
NORMAL_PRIMITIVES: tuple[str, ...] = (
    "conv_3x3", "conv_5x5", "sep_3x3", "sep_5x5", "dil_3x3", "dil_5x5",
)
DOWN_PRIMITIVES: tuple[str, ...] = ("down_conv_3x3", "down_bilinear", "down_maxpool")
UP_PRIMITIVES: tuple[str, ...] = ("up_deconv_3x3", "up_pixel_shuffle", "up_bilinear", "up_nearest")
ROLES = ("normal", "down", "up")
# candidates: name -> (normal, down, up) primitives
CANDIDATE_SETS: dict[str, tuple[tuple[str, ...], tuple[str, ...], tuple[str, ...]]] = {
    "paper": (("conv_3x3", "sep_3x3", "dil_3x3", "res_3x3"),
              ("down_conv_3x3", "down_nearest", "down_area"),
              ("up_bilinear", "up_nearest", "up_area", "up_deconv_3x3")),
    "extended": (NORMAL_PRIMITIVES, DOWN_PRIMITIVES, UP_PRIMITIVES),
}


def conv_parameters(in_channels: int, out_channels: int, kernel: int) -> int:
    return kernel * kernel * in_channels * out_channels + out_channels


def relu_conv(in_channels: int, out_channels: int, kernel: int, dilation: int = 1,
              stride: int = 1) -> nn.Sequential:
    """ReLU -> kxk convolution with bias (no BatchNorm, MoD-NAS Sec. 3.2)."""
    padding = dilation * (kernel - 1) // 2
    return nn.Sequential(
        nn.ReLU(),
        nn.Conv2d(in_channels, out_channels, kernel, stride=stride, padding=padding,
                  dilation=dilation),
    )


def relu_sep_conv(in_channels: int, out_channels: int, kernel: int) -> nn.Sequential:
    """ReLU -> depthwise kxk (no bias) -> pointwise 1x1 (bias)."""
    return nn.Sequential(
        nn.ReLU(),
        nn.Conv2d(in_channels, in_channels, kernel, padding=kernel // 2, groups=in_channels,
                  bias=False),
        nn.Conv2d(in_channels, out_channels, 1),
    )


class ResidualBlock(nn.Module):
    """ReLU -> conv 3x3 -> ReLU -> conv 3x3, plus the identity (a 1x1 conv when the
    widths differ). Table 7's "Residual block" rows; the two-conv body is EDSR's [17]."""

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__()
        self.body = nn.Sequential(relu_conv(in_channels, out_channels, 3),
                                  relu_conv(out_channels, out_channels, 3))
        self.shortcut = (nn.Identity() if in_channels == out_channels
                         else nn.Conv2d(in_channels, out_channels, 1))

    def forward(self, x):
        return self.shortcut(x) + self.body(x)  # (B, out, H, W)


def residual_parameters(in_channels: int, out_channels: int) -> int:
    shortcut = 0 if in_channels == out_channels else conv_parameters(in_channels, out_channels, 1)
    return (conv_parameters(in_channels, out_channels, 3)
            + conv_parameters(out_channels, out_channels, 3) + shortcut)


class Resample(nn.Module):
    """Interpolation, pooling or subsampling by a fixed factor (no parameters)."""

    def __init__(self, mode: str, scale: float) -> None:
        super().__init__()
        self.mode, self.scale = mode, scale

    def forward(self, x):
        if self.mode == "max":
            return F.max_pool2d(x, 2)  # (B, C, H/2, W/2)
        if self.mode == "subsample":
            return x[..., ::2, ::2]  # (B, C, H/2, W/2): what a stride-2 conv keeps
        align = False if self.mode == "bilinear" else None
        return F.interpolate(x, scale_factor=self.scale, mode=self.mode, align_corners=align)


def relu_resample_conv(in_channels: int, out_channels: int, mode: str, scale: float,
                       kernel: int) -> nn.Sequential:
    """ReLU -> resample -> kxk conv for the channel conversion."""
    return nn.Sequential(
        nn.ReLU(), Resample(mode, scale),
        nn.Conv2d(in_channels, out_channels, kernel, padding=kernel // 2),
    )


def relu_deconv(in_channels: int, out_channels: int) -> nn.Sequential:
    """ReLU -> transposed conv 3x3, stride 2 (exactly doubles H and W)."""
    return nn.Sequential(
        nn.ReLU(),
        nn.ConvTranspose2d(in_channels, out_channels, 3, stride=2, padding=1, output_padding=1),
    )


def relu_pixel_shuffle(in_channels: int, out_channels: int) -> nn.Sequential:
    """ReLU -> conv 3x3 to 4 x out_channels -> pixel shuffle x2."""
    return nn.Sequential(
        nn.ReLU(), nn.Conv2d(in_channels, 4 * out_channels, 3, padding=1), nn.PixelShuffle(2)
    )


class SplitDown(nn.Module):
    """A down op as (convolution at the block's resolution, resampling): returns both
    (B, out, H, W), the skip of the level, and (B, out, H/2, W/2), the next level's input."""

    def __init__(self, conv: nn.Module, resample: Resample) -> None:
        super().__init__()
        self.conv, self.resample = conv, resample

    def forward(self, x):
        full = self.conv(x)
        return full, self.resample(full)




@dataclass(frozen=True)
class OpSpec:
    role: str  # "normal", "down" or "up"
    build: Callable[[int, int], nn.Module]  # (in_channels, out_channels) -> module
    parameters: Callable[[int, int], int]  # (in_channels, out_channels) -> parameter count
    gated: bool = True  # has output channels of its own (everything but skip)
    # down ops: (in, out) -> SplitDown, the form concatenating skip joins use
    split: Callable[[int, int], nn.Module] | None = None


def split_down(kernel: int, mode: str) -> Callable[[int, int], nn.Module]:
    return lambda i, o: SplitDown(relu_conv(i, o, kernel), Resample(mode, 0.5))


def _conv_op(role: str, kernel: int, dilation: int = 1, stride: int = 1) -> OpSpec:
    split = split_down(kernel, "subsample") if role == "down" else None
    return OpSpec(role, lambda i, o: relu_conv(i, o, kernel, dilation, stride),
                  lambda i, o: conv_parameters(i, o, kernel), split=split)


def _sep_op(kernel: int) -> OpSpec:
    return OpSpec("normal", lambda i, o: relu_sep_conv(i, o, kernel),
                  lambda i, o: kernel * kernel * i + conv_parameters(i, o, 1))


def _resample_op(role: str, mode: str, scale: float, kernel: int) -> OpSpec:
    split = split_down(kernel, mode) if role == "down" else None
    return OpSpec(role, lambda i, o: relu_resample_conv(i, o, mode, scale, kernel),
                  lambda i, o: conv_parameters(i, o, kernel), split=split)


OPS: dict[str, OpSpec] = {
    "conv_3x3": _conv_op("normal", 3),
    "conv_5x5": _conv_op("normal", 5),
    "sep_3x3": _sep_op(3),
    "sep_5x5": _sep_op(5),
    "dil_3x3": _conv_op("normal", 3, dilation=2),
    "dil_5x5": _conv_op("normal", 5, dilation=2),
    "res_3x3": OpSpec("normal", ResidualBlock, residual_parameters),
    SKIP: OpSpec("normal", lambda i, o: nn.Identity(), lambda i, o: 0, gated=False),
    "down_conv_3x3": _conv_op("down", 3, stride=2),
    "down_bilinear": _resample_op("down", "bilinear", 0.5, 3),
    "down_maxpool": _resample_op("down", "max", 0.5, 1),
    "down_nearest": _resample_op("down", "nearest", 0.5, 3),
    "down_area": _resample_op("down", "area", 0.5, 3),
    "up_deconv_3x3": OpSpec("up", relu_deconv, lambda i, o: conv_parameters(i, o, 3)),
    "up_pixel_shuffle": OpSpec("up", relu_pixel_shuffle,
                               lambda i, o: conv_parameters(i, 4 * o, 3)),
    "up_bilinear": _resample_op("up", "bilinear", 2.0, 3),
    "up_nearest": _resample_op("up", "nearest", 2.0, 3),
    "up_area": _resample_op("up", "area", 2.0, 3),
}
