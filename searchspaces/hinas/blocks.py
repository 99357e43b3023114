"""Fixed (not searched) parts shared by the HiNAS supernet and derived network:
the start part (stem), the 1x1 projections between widths, and the end part
(head). Journal Sec. 3.2, Fig. 2.
"""

from __future__ import annotations

from torch import nn

from searchspaces.hinas.operations import Pointwise, make_activation


class Stem(nn.Sequential):
    """Start part: two 3x3 convs from the image to `channels` shallow features."""

    def __init__(self, in_channels: int, channels: int, affine: bool, activation: str) -> None:
        super().__init__(
            nn.Conv2d(in_channels, channels, 3, padding=1, bias=False),
            nn.BatchNorm2d(channels, affine=affine),
            make_activation(activation),
            nn.Conv2d(channels, channels, 3, padding=1, bias=False),
            nn.BatchNorm2d(channels, affine=affine),
        )


class Projection(nn.Sequential):
    """1x1 conv + BN that brings a feature map to a cell's node width (Eq. 5: f = 1x1(h))."""

    def __init__(self, in_channels: int, out_channels: int, affine: bool) -> None:
        super().__init__(
            Pointwise(in_channels, out_channels),
            nn.BatchNorm2d(out_channels, affine=affine),
        )


class Head(nn.Sequential):
    """End part: two 3x3 convs from the concatenated last-layer features to the image
    channels. Without BatchNorm, so zeroing its parameters gives an exact zero output."""

    def __init__(
        self, in_channels: int, hidden_channels: int, out_channels: int, activation: str
    ) -> None:
        super().__init__(
            nn.Conv2d(in_channels, hidden_channels, 3, padding=1),
            make_activation(activation),
            nn.Conv2d(hidden_channels, out_channels, 3, padding=1),
        )
