"""The discrete HiNAS network a genotype describes (journal Fig. 2 after search;
SPEC 2.3 "Derived network").

One derived cell per layer at its searched width level; each cell's inputs are
1x1 conv+BN projections (the level transitions) of the previous cell's output
and of the output two layers back (the stem for layers 0 and 1, as in the
supernet). The head maps the last cell to the image; residual learning per
the genotype. BatchNorm is affine here.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch
from torch import nn

from searchspaces.genotype import Genotype
from searchspaces.hinas.blocks import Head, Projection, Stem
from searchspaces.hinas.cells import DerivedCell

if TYPE_CHECKING:
    from searchspaces.hinas.space import HiNASOptions


class HiNASNetwork(nn.Module):
    prefers_nhwc = True  # channels_last: 1.1-1.4x faster CPU training step (measured)

    def __init__(self, genotype: Genotype, options: HiNASOptions, in_channels: int) -> None:
        super().__init__()
        arch, act = genotype.arch, options.activation
        self.levels = list(arch["levels"])
        self.residual = bool(arch["residual"])
        if max(self.levels) >= len(options.width_multipliers):
            raise ValueError(
                f"levels: level {max(self.levels)} needs more than the "
                f"{len(options.width_multipliers)} width_multipliers of the options"
            )
        widths = [int(options.width * options.width_multipliers[lv]) for lv in self.levels]
        num_nodes = int(arch["num_nodes"])
        # channels[l + 1] = output channels of layer l; channels[0] = stem
        channels = [options.stem_channels] + [num_nodes * width for width in widths]

        self.stem = Stem(in_channels, options.stem_channels, True, act)
        self.previous = nn.ModuleList()
        self.two_back = nn.ModuleList()
        self.cells = nn.ModuleList()
        for layer, width in enumerate(widths):
            cell = arch["cells"][layer if arch["layerwise"] else 0]
            self.previous.append(Projection(channels[layer], width, True))
            self.two_back.append(Projection(channels[max(layer - 1, 0)], width, True))
            self.cells.append(DerivedCell(width, cell, act))
        self.head = Head(channels[-1], options.stem_channels, in_channels, act)

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        outputs = [self.stem(image)]  # outputs[l + 1] = layer l, (B, C_l, H, W)
        for layer, cell in enumerate(self.cells):
            two_back = self.two_back[layer](outputs[max(layer - 1, 0)])
            previous = self.previous[layer](outputs[layer])
            outputs.append(cell(two_back, previous))
        out = self.head(outputs[-1])  # (B, C_in, H, W)
        return image - out if self.residual else out
