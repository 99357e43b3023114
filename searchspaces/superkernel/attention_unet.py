"""Superkernel-based Attentional Residual U-net subnetwork, SK-A-RES-UNET
(Mozejko et al. 2020, Sec. 3.1, Figs. 2-3), and with SkipInit DCR
blocks the SkipInit Residual U-net of Sec. 3.2 ("similar to the one delineated
in Figure 2. The part that differs is the actual convolutional blocks").

Encoder level: (stride-2 conv down, from level 1 on) 3x3 conv + activation,
then `blocks_per_level` DCR blocks (SK-DCR without a scalar in the attention
U-net; with the SkipInit scalar in the SkipInit U-net). Decoder level: pixel
shuffle up, concatenation with the skip, a channel-attention block on the
concatenation, 3x3 conv + activation back to the level width (ours: the figure
is not in the text), then DCR blocks. The multi-attentional network
(`network.py`) runs n of these in parallel and fuses them.
"""

from __future__ import annotations

import torch
from torch import nn

from searchspaces.superkernel.blocks import (
    ChannelAttention,
    ConvReLU,
    Downsample,
    SlotFactory,
    Upsample,
    dcr_stack,
)


class AttentionUNet(nn.Module):
    def __init__(
        self,
        name: str,
        in_channels: int,
        widths: list[int],
        blocks_per_level: int,
        make_slot: SlotFactory,
        skipinit_scale: float | None = None,  # None: SK-DCR blocks (Sec. 3.1); else SkipInit
        activation: str = "relu",
    ) -> None:
        super().__init__()
        depth = len(widths) - 1
        inputs = [in_channels, *widths[1:]]  # level > 0 starts after its downsampling

        def blocks(part: str, level: int) -> nn.Sequential:
            return dcr_stack(f"{name}.{part}{level}", widths[level], blocks_per_level, make_slot,
                             skipinit_scale, activation)

        self.encoders = nn.ModuleList(
            nn.Sequential(ConvReLU(inputs[level], width, activation=activation),
                          blocks("enc", level))
            for level, width in enumerate(widths)
        )
        self.downs = nn.ModuleList(Downsample(widths[i], widths[i + 1], activation)
                                   for i in range(depth))
        self.ups = nn.ModuleList(Upsample(widths[i + 1], widths[i]) for i in range(depth))
        self.decoders = nn.ModuleList(
            nn.Sequential(
                ChannelAttention(2 * widths[level]),
                ConvReLU(2 * widths[level], widths[level], activation=activation),
                blocks("dec", level),
            )
            for level in range(depth)
        )

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        features, skips = image, []
        for level, encoder in enumerate(self.encoders):
            if level > 0:
                features = self.downs[level - 1](features)
            features = encoder(features)  # (B, W_level, H / 2^level, W / 2^level)
            skips.append(features)
        for level in reversed(range(len(self.ups))):
            upsampled = self.ups[level](features)
            features = self.decoders[level](torch.cat([upsampled, skips[level]], dim=1))
        return features  # (B, W0, H, W)
