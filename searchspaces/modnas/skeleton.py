"""The U-net skeleton shared by the searchable and the derived MoD-NAS denoiser (SPEC 3.2).

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


def stem(in_channels: int, width: int) -> nn.Conv2d:
    """Image -> full width (no ReLU in front: the input is the image itself)."""
    return nn.Conv2d(in_channels, width, 3, padding=1)


def head(width: int, in_channels: int) -> nn.Sequential:
    """ReLU -> 3x3 conv back to the image channels (the residual)."""
    return nn.Sequential(nn.ReLU(), nn.Conv2d(width, in_channels, 3, padding=1))


class UNetSkeleton(nn.Module):
    """Runs stem, encoders/downs, decoders/ups (with skips) and head.

    `encoders[l]` / `downs[l]`: level l < L-1; `decoders[l]`: level l; `ups[l - 1]`:
    the up-sampling layer of decoding block l >= 1.
    """

    def __init__(self, levels: int, stem_conv: nn.Module, encoders: list[nn.Module],
                 downs: list[nn.Module], decoders: list[nn.Module], ups: list[nn.Module],
                 head_conv: nn.Module) -> None:
        super().__init__()
        self.levels = levels
        self.stem = stem_conv
        self.encoders, self.downs = nn.ModuleList(encoders), nn.ModuleList(downs)
        self.decoders, self.ups = nn.ModuleList(decoders), nn.ModuleList(ups)
        self.head = head_conv

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        height, width = x.shape[-2:]
        x = pad_to_multiple(x, 2 ** (self.levels - 1))  # (B, C, H', W')
        features = self.stem(x)  # (B, width, H', W')
        skips = []
        for block, down in zip(self.encoders, self.downs):
            skips.append(block(features))  # (B, c_l, H_l, W_l)
            features = down(skips[-1])  # (B, c, H_l / 2, W_l / 2)
        for level in reversed(range(self.levels)):
            if level < self.levels - 1:
                features = add_padded(features, skips[level])
            features = self.decoders[level](features)
            if level > 0:
                features = self.ups[level - 1](features)  # (B, c, 2 H_l, 2 W_l)
        out = x + self.head(features)  # (B, C, H', W')
        return out[..., :height, :width]
