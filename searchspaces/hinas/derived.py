"""The discrete HiNAS network a genotype describes (journal Fig. 2 after search;
official one_stage_nas/modeling/dn_compnet.py Dn_compnet).

One derived cell per layer at its searched width level; each cell's inputs are
projections (the level transitions) of the previous cell's output and of the
output two layers back (for layers 0 and 1 the stem, its first conv for layer 0
under `two_back: code`). The end part maps the last cell (and, under `decoder:
code`, an endpoint) to the image; residual learning per the genotype. BatchNorm
is affine here, except the official endpoint reduction's. The options `stem`,
`two_back`, `projection` and `decoder` are documented in `options.py`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch
from torch import nn

from searchspaces.genotype import Genotype
from searchspaces.hinas.blocks import Decoder, Head, Projection, Stem, conv_bn
from searchspaces.hinas.cells import DerivedCell

if TYPE_CHECKING:
    from searchspaces.hinas.options import HiNASOptions


class HiNASNetwork(nn.Module):
    prefers_nhwc = True  # channels_last: 1.1-1.4x faster CPU training step (measured)

    def __init__(self, genotype: Genotype, options: HiNASOptions, in_channels: int) -> None:
        super().__init__()
        arch, act, network = genotype.arch, options.activation, options.network()
        self.levels = list(arch["levels"])
        self.residual = bool(arch["residual"])
        if max(self.levels) >= len(options.width_multipliers):
            raise ValueError(
                f"levels: level {max(self.levels)} needs more than the "
                f"{len(options.width_multipliers)} width_multipliers of the options"
            )
        node_widths = [int(options.width * g) for g in options.width_multipliers]
        manual = options.layer_widths is not None  # HiNAS-w40 / -wm (journal Table 3)
        if manual and len(options.layer_widths) != len(self.levels):
            raise ValueError(f"layer_widths: {len(options.layer_widths)} widths for a "
                             f"genotype of {len(self.levels)} layers")
        widths = list(options.layer_widths) if manual else \
            [node_widths[level] for level in self.levels]
        num_nodes = int(arch["num_nodes"])
        stem = options.stem_channels
        # channels[l + 1] = output channels of layer l; channels[0] = stem
        channels = [stem] + [num_nodes * width for width in widths]
        self.first_two_back = network.two_back == "code"  # layer 0: the stem's first conv

        self.stem = Stem(in_channels, stem, stem, True, act, network.stem == "code")
        self.previous = nn.ModuleList()
        self.two_back = nn.ModuleList()
        self.cells = nn.ModuleList()
        projection_act = act if network.projection == "code" else None
        for layer, width in enumerate(widths):
            cell = arch["cells"][layer if arch["layerwise"] else 0]
            self.previous.append(Projection(channels[layer], width, True, projection_act))
            self.two_back.append(
                Projection(channels[max(layer - 1, 0)], width, True, projection_act))
            self.cells.append(DerivedCell(width, cell, act))
        # manual widths have no level-0 cell of the decoder's width: the stem's reduction
        self.endpoint = endpoint_layer(self.levels) if network.decoder == "code" and \
            not manual else None
        if network.decoder == "code":
            self.reduce = conv_bn(stem, num_nodes * node_widths[0], 3, affine=False)
            self.head = Decoder(num_nodes * node_widths[0], channels[-1], in_channels, act)
        else:
            self.head = Head(channels[-1], stem, in_channels, act)

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        first, stem = self.stem(image)  # (B, stem, H, W) each
        outputs = [stem]  # outputs[l + 1] = layer l, (B, C_l, H, W)
        for layer, cell in enumerate(self.cells):
            back = first if layer == 0 and self.first_two_back else outputs[max(layer - 1, 0)]
            two_back = self.two_back[layer](back)
            previous = self.previous[layer](outputs[layer])
            outputs.append(cell(two_back, previous))
        if isinstance(self.head, Decoder):
            endpoint = self.reduce(stem) if self.endpoint is None else outputs[self.endpoint + 1]
            out = self.head(endpoint, outputs[-1])  # (B, C_in, H, W)
        else:
            out = self.head([outputs[-1]])
        return image - out if self.residual else out


def endpoint_layer(levels: list[int]) -> int | None:
    """The layer whose output is the official decoder's endpoint: the last layer at level 0,
    unless that is the last layer or there is none (then None: a reduction of the stem).
    Dn_compnet.__init__ (`self.endpoint`)."""
    last = max((layer for layer, level in enumerate(levels) if level == 0), default=None)
    return None if last is None or last == len(levels) - 1 else last
