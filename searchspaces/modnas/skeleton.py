"""The U-net skeleton shared by the searchable and the derived MoD-NAS denoiser (MoD-NAS
Sec. 3.2, Fig. 1).

Levels 0..L-1 (0 = full resolution). Encoding block l < L-1 runs its normal
layers, keeps its output as the skip of level l and down-samples it to level
l+1; decoding block l runs on the bottom input (l = L-1) or on the up-sampled
output of block l+1 plus the skip of level l, and up-samples its output to
level l-1 (block 0 has no up-sampling layer). A 3x3 stem maps the image to
features (its width is searched too), a ReLU + 3x3 head maps back, and the
denoiser is residual: D(x) = x + head(...).

Skips are added, as in the ResUNet prior of deep unfolding networks (KAIR,
USRNet): every dense path of the supernet then has the full width. In the
derived network the two summands may keep different channel counts; the
narrower one is zero-padded (`add_padded`), so the block input has the wider
count. Inputs are replicate-padded to a multiple of 2^(L-1) and the output is
cropped back, so whole test images of any size go through.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def pad_to_multiple(x: torch.Tensor, multiple: int) -> torch.Tensor:
    """Replicate-pad the bottom and right of (B, C, H, W) to multiples of `multiple`."""
    height, width = x.shape[-2:]
    bottom, right = -height % multiple, -width % multiple
    if bottom == 0 and right == 0:
        return x
    return F.pad(x, (0, right, 0, bottom), mode="replicate")


def add_padded(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """a + b, the narrower of the two zero-padded along channels to the wider one."""
    difference = a.shape[1] - b.shape[1]
    if difference > 0:
        b = F.pad(b, (0, 0, 0, 0, 0, difference))
    elif difference < 0:
        a = F.pad(a, (0, 0, 0, 0, 0, -difference))
    return a + b  # (B, max(Ca, Cb), H, W)


JOIN_KERNELS = {"concat": 3, "concat1x1": 1}  # skip_join -> the join conv's kernel size


def join_channels(up_channels: int, skip_channels: int) -> int:
    """Output width of a concatenating join: half its input, rounded up (72 -> 36)."""
    return (up_channels + skip_channels + 1) // 2


class ConcatJoin(nn.Module):
    """concat(up-sampled, skip) -> k x k conv without activation to half the channels (k 3:
    `skip_join: concat`; 1: `concat1x1`)."""

    def __init__(self, up_channels: int, skip_channels: int, kernel: int = 3) -> None:
        super().__init__()
        total = up_channels + skip_channels
        self.conv = nn.Conv2d(total, join_channels(up_channels, skip_channels), kernel,
                              padding=kernel // 2)

    def forward(self, up: torch.Tensor, skip: torch.Tensor) -> torch.Tensor:
        return self.conv(torch.cat([up, skip], dim=1))  # (B, (Cu + Cs) / 2, H, W)


class AddJoin(nn.Module):
    """up + skip, the narrower zero-padded (the `add` joins)."""

    def forward(self, up: torch.Tensor, skip: torch.Tensor) -> torch.Tensor:
        return add_padded(up, skip)


def stem(in_channels: int, width: int) -> nn.Conv2d:
    """Image -> full width (no ReLU in front: the input is the image itself)."""
    return nn.Conv2d(in_channels, width, 3, padding=1)


def fixed_stem(in_channels: int, channels: int) -> nn.Sequential:
    """The paper's two fixed convs: image -> channels, ReLU, channels -> channels."""
    return nn.Sequential(stem(in_channels, channels), nn.ReLU(),
                         nn.Conv2d(channels, channels, 3, padding=1))


def head(width: int, in_channels: int) -> nn.Sequential:
    """ReLU -> 3x3 conv back to the image channels (the residual)."""
    return nn.Sequential(nn.ReLU(), nn.Conv2d(width, in_channels, 3, padding=1))


class UNetSkeleton(nn.Module):
    """Runs stem, encoders/downs, decoders/ups (with skips) and head.

    `encoders[l]` / `downs[l]` / `joins[l]`: level l < L-1; `decoders[l]`: level l;
    `ups[l - 1]`: the up-sampling layer of decoding block l >= 1. `split_downs`: the
    downs return (skip, next level's input) (`SplitDown`, concatenating joins).
    """

    def __init__(self, levels: int, stem_conv: nn.Module, encoders: list[nn.Module],
                 downs: list[nn.Module], decoders: list[nn.Module], ups: list[nn.Module],
                 head_conv: nn.Module, joins: list[nn.Module] | None = None,
                 split_downs: bool = False) -> None:
        super().__init__()
        self.levels = levels
        self.stem = stem_conv
        self.encoders, self.downs = nn.ModuleList(encoders), nn.ModuleList(downs)
        self.decoders, self.ups = nn.ModuleList(decoders), nn.ModuleList(ups)
        self.joins = nn.ModuleList(joins if joins is not None else
                                   [AddJoin() for _ in range(levels - 1)])
        self.split_downs = split_downs
        self.head = head_conv

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        height, width = x.shape[-2:]
        x = pad_to_multiple(x, 2 ** (self.levels - 1))  # (B, C, H', W')
        features = self.stem(x)  # (B, width, H', W')
        skips = []
        for block, down in zip(self.encoders, self.downs):
            features = block(features)  # (B, c_l, H_l, W_l)
            if self.split_downs:
                skip, features = down(features)  # (B, c, H_l, W_l), (B, c, H_l / 2, W_l / 2)
            else:
                skip, features = features, down(features)
            skips.append(skip)
        for level in reversed(range(self.levels)):
            if level < self.levels - 1:
                features = self.joins[level](features, skips[level])
            features = self.decoders[level](features)
            if level > 0:
                features = self.ups[level - 1](features)  # (B, c, 2 H_l, 2 W_l)
        out = x + self.head(features)  # (B, C, H', W')
        return out[..., :height, :width]
