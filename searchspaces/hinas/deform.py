"""Modulated deformable convolution (DCNv2, Zhu et al., CVPR 2019, Eq. 3) in pure torch, and
the HiNAS CVPR'20 `def_3x3` operation built on it (CVPR Sec. 2.1, "def: 3x3 deformable
convolution v2").

    y(p) = sum_k w_k * x(p + p_k + dp_k) * dm_k

The offsets dp_k and modulation scalars dm_k come from a plain convolution over the same
input with 3 * G * K output channels (G deformable groups, K = kh * kw kernel taps): the
first 2GK are the offsets, (dy, dx) of tap k of group g at channels 2(gK + k) and
2(gK + k) + 1 (the layout of torchvision.ops.deform_conv2d and of the DCNv2 CUDA code),
the last GK go through a sigmoid to the masks. That convolution starts at zero (DCNv2
Sec. 3.1: offsets 0 and masks 0.5 at the start; so does `DCN` of the DCNv2 package the
official HiNAS code imports, with `deformable_groups=2`: one_stage_nas/darts/operations.py,
commented-out `DefConv`).

x at a fractional position is bilinear in its four neighbours; neighbours outside the image
count as zero (a position at or beyond one pixel outside gives 0), as in the CUDA kernel.
Here all taps are one `grid_sample` call over the whole batch: the K sampled copies of the
input (K times its memory) then meet the kernel in one matrix product. When a torchvision
with compiled ops is importable, `torchvision.ops.deform_conv2d` computes the same.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from pydantic import ValidationError
from pydantic_core import InitErrorDetails, PydanticCustomError
from torch import nn
from torch.utils.checkpoint import checkpoint

DEFORM = "def_3x3"  # the primitive name (CVPR Sec. 2.1 "def")
DEFORMABLE_GROUPS = 2  # offset groups of the official code's DCN (deformable_groups=2)


def _torchvision_deform_conv2d():
    """torchvision.ops.deform_conv2d when a torchvision with its compiled ops loads beside
    this torch, else None (its PyPI build does not load beside the CPU torch used here)."""
    try:
        from torchvision.ops import deform_conv2d
    except (ImportError, OSError, RuntimeError):
        return None
    return deform_conv2d


FAST_DEFORM_CONV2D = _torchvision_deform_conv2d()


def deform_conv2d(x: torch.Tensor, offset: torch.Tensor, mask: torch.Tensor,
                  weight: torch.Tensor, padding: int = 1, dilation: int = 1) -> torch.Tensor:
    """Modulated deformable convolution, stride 1, in pure torch (DCNv2 Eq. 3).

    x: (B, C, H, W); offset: (B, 2*G*K, Ho, Wo); mask: (B, G*K, Ho, Wo); weight:
    (C_out, C, kh, kw). G = offset channels / (2K) must divide C. Returns (B, C_out, Ho, Wo).
    """
    x, offset, mask = (t.contiguous() for t in (x, offset, mask))  # the supernet's NHWC
    batch, channels, height, width = x.shape
    _, _, kernel_h, kernel_w = weight.shape
    taps = kernel_h * kernel_w
    groups = offset.shape[1] // (2 * taps)
    out_h = height + 2 * padding - dilation * (kernel_h - 1)
    out_w = width + 2 * padding - dilation * (kernel_w - 1)
    base_y, base_x = _tap_positions(kernel_h, kernel_w, out_h, out_w, padding, dilation, x)
    offset = offset.reshape(batch, groups, taps, 2, out_h, out_w)
    pos_y = base_y + offset[:, :, :, 0]  # (B, G, K, Ho, Wo), pixel coordinates
    pos_x = base_x + offset[:, :, :, 1]
    # align_corners=False: pixel i has its centre at (2i + 1) / size - 1 (valid for size 1)
    grid = torch.stack(((2 * pos_x + 1) / width - 1, (2 * pos_y + 1) / height - 1), dim=-1)
    grid = grid.reshape(batch * groups, taps * out_h, out_w, 2)
    inputs = x.reshape(batch * groups, channels // groups, height, width)
    sampled = F.grid_sample(inputs, grid.to(x.dtype), mode="bilinear", padding_mode="zeros",
                            align_corners=False)  # (B*G, C/G, K*Ho, Wo)
    sampled = sampled.reshape(batch, groups, channels // groups, taps, out_h, out_w)
    sampled = sampled * mask.reshape(batch, groups, 1, taps, out_h, out_w)
    return torch.einsum("bgckhw,ogck->bohw", sampled, _weight_view(weight, groups))


def _weight_view(weight: torch.Tensor, groups: int) -> torch.Tensor:
    """weight (C_out, C, kh, kw) as (C_out, G, C/G, K), a view in either memory layout (a
    reshape of a channels_last weight also fails in the dry run's meta memory probe)."""
    out_channels, channels, kernel_h, kernel_w = weight.shape
    shape = (out_channels, groups, channels // groups, kernel_h * kernel_w)
    if weight.is_contiguous():
        return weight.reshape(shape)
    taps_first = weight.permute(0, 2, 3, 1).reshape(out_channels, shape[3], *shape[1:3])
    return taps_first.permute(0, 2, 3, 1)


def _tap_positions(kernel_h: int, kernel_w: int, out_h: int, out_w: int, padding: int,
                   dilation: int, like: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """p + p_k of every tap k = i * kw + j at every output pixel: (K, Ho, Wo) each."""
    options = {"device": like.device, "dtype": torch.float32}
    rows = torch.arange(out_h, **options) - padding
    cols = torch.arange(out_w, **options) - padding
    tap_i = torch.arange(kernel_h, **options).repeat_interleave(kernel_w) * dilation
    tap_j = torch.arange(kernel_w, **options).repeat(kernel_h) * dilation
    base_y = (tap_i[:, None, None] + rows[None, :, None]).expand(-1, out_h, out_w)
    base_x = (tap_j[:, None, None] + cols[None, None, :]).expand(-1, out_h, out_w)
    return base_y, base_x


class DeformConv2d(nn.Module):
    """C -> C modulated deformable kxk convolution (stride 1, same size, no bias: a
    BatchNorm follows in every HiNAS op). `offset_mask` predicts offsets and masks; it
    starts at zero (offsets 0, masks 0.5, DCNv2 Sec. 3.1). `use_fast` picks
    torchvision's kernel when one is importable. `recompute` (pure torch path, training)
    keeps only the input for backward and computes offsets and samples again there, as the
    DCNv2 CUDA kernels redo their columns: the K sampled copies are never stored
    (studies/hinas_cvpr.yaml's search: 15.3 GiB per trial estimated, 40.5 GiB without;
    1x16x64x64 on one CPU thread: forward + backward 14-16 ms against 9-13 ms)."""

    def __init__(self, channels: int, kernel: int = 3, groups: int = DEFORMABLE_GROUPS,
                 dilation: int = 1) -> None:
        super().__init__()
        if channels % groups:
            raise ValueError(f"{groups} deformable groups do not divide {channels} channels")
        self.groups, self.dilation, self.padding = groups, dilation, dilation * (kernel - 1) // 2
        self.weight = nn.Parameter(torch.empty(channels, channels, kernel, kernel))
        nn.init.kaiming_uniform_(self.weight, a=math.sqrt(5))  # nn.Conv2d's initialisation
        self.offset_mask = nn.Conv2d(channels, 3 * groups * kernel * kernel, kernel,
                                     padding=self.padding, dilation=dilation)
        nn.init.zeros_(self.offset_mask.weight)
        nn.init.zeros_(self.offset_mask.bias)
        self.use_fast = FAST_DEFORM_CONV2D is not None
        self.recompute = True

    def offsets_and_mask(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        predicted = self.offset_mask(x)  # (B, 3*G*K, H, W)
        split = 2 * predicted.shape[1] // 3
        return predicted[:, :split], torch.sigmoid(predicted[:, split:])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.recompute and torch.is_grad_enabled() and not self.use_fast:
            return checkpoint(self.deform, x, use_reentrant=False)
        return self.deform(x)

    def deform(self, x: torch.Tensor) -> torch.Tensor:
        offset, mask = self.offsets_and_mask(x)
        if self.use_fast and FAST_DEFORM_CONV2D is not None:
            return FAST_DEFORM_CONV2D(x, offset, self.weight, None, 1, self.padding,
                                      self.dilation, mask)
        return deform_conv2d(x, offset, mask, self.weight, self.padding, self.dilation)


class DeformConvBN(nn.Sequential):
    """The CVPR `def` op: activation -> 3x3 DCNv2 (2 deformable groups) -> BatchNorm, the
    order of every HiNAS conv op (CVPR Sec. 2.1)."""

    def __init__(self, channels: int, affine: bool, activation: nn.Module) -> None:
        super().__init__(
            activation,
            DeformConv2d(channels, 3),
            nn.BatchNorm2d(channels, affine=affine),
        )


def check_deformable_widths(primitives: Sequence[str], width: int,
                            multipliers: Sequence[float]) -> None:
    """A ValidationError at `width` when `def_3x3` is a candidate and a node width
    int(width * gamma) is not a multiple of the deformable groups."""
    if DEFORM not in primitives:
        return
    for gamma in multipliers:
        channels = int(width * gamma)
        if channels % DEFORMABLE_GROUPS:
            message = (f"{width} x multiplier {gamma:g} gives {channels} channels, which the "
                       f"{DEFORMABLE_GROUPS} deformable groups of {DEFORM} do not divide "
                       f"(use a width whose node widths are all even)")
            kind = PydanticCustomError("value_error", "{message}", {"message": message})
            raise ValidationError.from_exception_data(
                "HiNASOptions", [InitErrorDetails(type=kind, loc=("width",), input=width)])
