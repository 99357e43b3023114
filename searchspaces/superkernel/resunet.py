"""SkipInit Residual U-net body, "compact" layout (Mozejko et al. 2020, Sec. 3.2,
Fig. 4, Sec. 5.2). The paper's layout (a 3x3 conv + activation per
level, channel attention after each decoder concatenation) is the attention
U-net body of `attention_unet.py` with SkipInit DCR blocks; this one is the
project's earlier, lighter reading, kept as `layout: compact`.

A U-net with `depth` stride-2 downsamplings (depth + 1 levels): every level has
`blocks_per_level` DCR blocks with SkipInit in the encoder, every level above
the bottom as many in the decoder (depth 3: 14 blocks, 28 superkernels, as the
paper's Model 1; depth 2: 10 and 20, Model 2). One 3x3 head conv from the
image; up: pixel shuffle, the upsampled features concatenated with the skip and
merged by a 1x1 conv, no attention (ours). The body maps the image to level-0
features; the network wrapper (`network.py`) adds the output conv and the
global residual.
"""

from __future__ import annotations

import torch
from torch import nn

from searchspaces.superkernel.blocks import Downsample, SlotFactory, Upsample, conv, dcr_stack


class SkipInitUNet(nn.Module):
    def __init__(
        self,
        name: str,
        in_channels: int,
        widths: list[int],
        blocks_per_level: int,
        make_slot: SlotFactory,
        skipinit_scale: float,
        activation: str = "relu",
    ) -> None:
        super().__init__()
        depth = len(widths) - 1

        def blocks(part: str, level: int) -> nn.Sequential:
            return dcr_stack(f"{name}.{part}{level}", widths[level], blocks_per_level, make_slot,
                             skipinit_scale, activation)

        self.head = conv(in_channels, widths[0])
        self.encoders = nn.ModuleList(blocks("enc", level) for level in range(depth + 1))
        self.downs = nn.ModuleList(Downsample(widths[i], widths[i + 1], activation)
                                   for i in range(depth))
        self.ups = nn.ModuleList(Upsample(widths[i + 1], widths[i]) for i in range(depth))
        self.merges = nn.ModuleList(conv(2 * widths[i], widths[i], 1) for i in range(depth))
        self.decoders = nn.ModuleList(blocks("dec", level) for level in range(depth))

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        features = self.head(image)  # (B, W0, H, W)
        skips = []
        for level, encoder in enumerate(self.encoders):
            features = encoder(features)  # (B, W_level, H / 2^level, W / 2^level)
            if level < len(self.downs):
                skips.append(features)
                features = self.downs[level](features)
        for level in reversed(range(len(self.ups))):
            upsampled = self.ups[level](features)
            features = self.merges[level](torch.cat([upsampled, skips[level]], dim=1))
            features = self.decoders[level](features)
        return features  # (B, W0, H, W)
