"""The whole superkernel denoiser around its backbone bodies (Mozejko et al. 2020,
Sec. 3.1, Fig. 1), shared by the supernet and the derived network.

n parallel bodies (`num_subnets`; 1, 3 or 6 in the paper) map the image to
level-0 features; their outputs are concatenated, passed through a channel
attention block (attention U-net only), a 3x3 conv to the image channels, and
added to the input (residual learning). With one SkipInit U-net body this is the
plain SkipInit Residual U-net of Sec. 3.2: `layout` "paper" (the attention U-net
body of Fig. 2 with SkipInit DCR blocks, as Sec. 3.2 says) or "compact" (one head
conv, 1x1 merges, no attention: `resunet.py`). Genotypes written before the
layout and the activation were part of the structure read as compact / relu.

Level widths grow arithmetically: level l has `width * (l + 1)` channels
(Sec. 5.2). Inputs whose sides are not multiples of 2^depth are padded
(replicate) and the output cropped back, so whole test images go through.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from searchspaces.superkernel.attention_unet import AttentionUNet
from searchspaces.superkernel.blocks import ChannelAttention, SlotFactory, conv
from searchspaces.superkernel.resunet import SkipInitUNet

BACKBONES = ("resunet", "attention_unet")
LAYOUTS = ("paper", "compact")  # of the SkipInit U-net (the attention U-net has one)
# what a genotype without the key was built with (before the `layout` and
# `activation` options existed)
LEGACY_STRUCTURE = {"layout": "compact", "activation": "relu"}


@dataclass(frozen=True)
class Structure:
    """The fixed (not searched) shape of a network; part of every genotype."""

    backbone: str  # "resunet" (SkipInit Residual U-net) or "attention_unet"
    depth: int  # stride-2 downsamplings; depth + 1 levels
    width: int  # level-0 width; level l has width * (l + 1) channels
    blocks_per_level: int  # DCR blocks per level, in the encoder and in the decoder
    num_subnets: int  # parallel U-net bodies
    layout: str = "paper"  # SkipInit U-net: "paper" (Sec. 3.2) or "compact" (resunet.py)
    activation: str = "relu"  # after every conv: "relu" or "prelu"

    def widths(self) -> list[int]:
        return [self.width * (level + 1) for level in range(self.depth + 1)]

    @classmethod
    def from_mapping(cls, data: Any) -> Structure:
        """From options or a genotype's arch (extra keys ignored; a genotype without
        `layout` / `activation` is read as LEGACY_STRUCTURE)."""
        fields = cls.__dataclass_fields__
        if isinstance(data, dict):
            return cls(*(data.get(key, LEGACY_STRUCTURE.get(key)) for key in fields))
        return cls(*(getattr(data, key) for key in fields))


class SuperkernelNetwork(nn.Module):
    """num_subnets bodies -> concat -> [channel attention] -> 3x3 conv -> + input."""

    prefers_nhwc = True  # channels_last: 1.1-1.4x faster CPU training step (measured)

    def __init__(
        self, structure: Structure, in_channels: int, make_slot: SlotFactory,
        skipinit_scale: float,
    ) -> None:
        super().__init__()
        self.multiple = 2**structure.depth
        self.subnets = nn.ModuleList(
            _body(structure, f"sub{index}", in_channels, make_slot, skipinit_scale)
            for index in range(structure.num_subnets)
        )
        fused = structure.num_subnets * structure.width
        attention = structure.backbone == "attention_unet"
        self.attention = ChannelAttention(fused) if attention else nn.Identity()
        self.tail = conv(fused, in_channels)

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        height, width = image.shape[-2:]
        padded = F.pad(image, (0, -width % self.multiple, 0, -height % self.multiple),
                       mode="replicate")
        features = torch.cat([subnet(padded) for subnet in self.subnets], dim=1)  # (B, nW0, ..)
        residual = self.tail(self.attention(features))  # (B, C, H', W')
        return image + residual[..., :height, :width]


def _body(structure: Structure, name: str, in_channels: int, make_slot: SlotFactory,
          skipinit_scale: float) -> nn.Module:
    widths, blocks, act = structure.widths(), structure.blocks_per_level, structure.activation
    if structure.backbone == "resunet" and structure.layout == "compact":
        return SkipInitUNet(name, in_channels, widths, blocks, make_slot, skipinit_scale, act)
    if structure.backbone == "resunet" and structure.layout == "paper":
        return AttentionUNet(name, in_channels, widths, blocks, make_slot, skipinit_scale, act)
    if structure.backbone == "attention_unet":
        return AttentionUNet(name, in_channels, widths, blocks, make_slot, None, act)
    if structure.backbone in BACKBONES:
        raise ValueError(f"layout: unknown {structure.layout!r} (known: {', '.join(LAYOUTS)})")
    raise ValueError(f"backbone: unknown {structure.backbone!r} (known: {', '.join(BACKBONES)})")


def slot_widths(structure: Structure) -> dict[str, int]:
    """Every searchable slot of `structure`, in build order, with its level width.

    Built on the meta device with placeholder slots: no memory, no compute."""
    widths: dict[str, int] = {}

    def record(name: str, in_channels: int, level_width: int) -> tuple[nn.Module, int]:
        widths[name] = level_width
        return nn.Identity(), 1

    with torch.device("meta"):
        SuperkernelNetwork(structure, 1, record, 0.0)
    return widths
