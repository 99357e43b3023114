"""Fixed (not searched) parts shared by the HiNAS supernet and derived network: the start
part (stem), the 1x1 projections between widths, and the end parts (journal Sec. 3.2,
Fig. 2; the official code's forms are cited per class, see `options.py` for the options).
"""

from __future__ import annotations

from collections import OrderedDict

import torch
from torch import nn

from searchspaces.hinas.operations import Pointwise, make_activation

DECODER_CHANNELS = 128  # official decoders.py Dn_Decoder: the last cell's 1x1 conv
ENDPOINT_CHANNELS = 48  # ... and the endpoint's 1x1 conv (concat: 176 channels)
ASPP_RATE = 16  # official decoders.build_decoder: out_strides of 16 in the search


def conv_bn(in_channels: int, out_channels: int, kernel: int, affine: bool,
            activation: str | None = None) -> nn.Sequential:
    """kxk conv (no bias) -> BatchNorm [-> activation] (official common.py conv{1x1,3x3}_bn)."""
    conv = Pointwise(in_channels, out_channels) if kernel == 1 else \
        nn.Conv2d(in_channels, out_channels, kernel, padding=kernel // 2, bias=False)
    layers = OrderedDict(conv=conv, norm=nn.BatchNorm2d(out_channels, affine=affine))
    if activation is not None:
        layers["activation"] = make_activation(activation)
    return nn.Sequential(layers)


class Stem(nn.Module):
    """Start part: 3x3 conv+BN+act, then 3x3 conv+BN ('start-part', Sec. 3.2). Returns the
    first conv's activated output and the stem output. `repeat_activation` (the official
    code, dn_supernet.py / dn_compnet.py forward) applies the activation once more before
    the second conv: LeakyReLU(0.2) twice, slope 0.04."""

    def __init__(self, in_channels: int, channels: int, out_channels: int, affine: bool,
                 activation: str, repeat_activation: bool) -> None:
        super().__init__()
        self.first = conv_bn(in_channels, channels, 3, affine, activation)
        self.again = make_activation(activation) if repeat_activation else nn.Identity()
        self.second = conv_bn(channels, out_channels, 3, affine)

    def forward(self, image: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        first = self.first(image)  # (B, channels, H, W)
        return first, self.second(self.again(first))  # (B, out_channels, H, W)


class Projection(nn.Sequential):
    """[activation ->] 1x1 conv -> BN: brings a feature map to a cell's node width (Eq. 5:
    f = 1x1(h)). The activation is the official derived network's (dn_compnet.py
    DeepLabScaler_Width)."""

    def __init__(self, in_channels: int, out_channels: int, affine: bool,
                 activation: str | None = None) -> None:
        layers: OrderedDict[str, nn.Module] = OrderedDict()
        if activation is not None:
            layers["activation"] = make_activation(activation)
        layers["conv"] = Pointwise(in_channels, out_channels)
        layers["norm"] = nn.BatchNorm2d(out_channels, affine=affine)
        super().__init__(layers)


class Head(nn.Sequential):
    """End part in the paper: two 3x3 convs from the concatenated last-layer features to the
    image channels ('end-part', Sec. 3.2). Without BatchNorm, so zeroing its parameters
    gives an exact zero output."""

    def __init__(
        self, in_channels: int, hidden_channels: int, out_channels: int, activation: str
    ) -> None:
        super().__init__(
            nn.Conv2d(in_channels, hidden_channels, 3, padding=1),
            make_activation(activation),
            nn.Conv2d(hidden_channels, out_channels, 3, padding=1),
        )

    def forward(self, features: list[torch.Tensor]) -> torch.Tensor:  # type: ignore[override]
        return super().forward(torch.cat(features, dim=1))  # (B, C_in, H, W)


class SeparableBlock(nn.Sequential):
    """Depthwise 3x3 (dilated by `rate`) -> BN -> act -> 1x1 -> BN -> act, BatchNorms always
    affine (official common.py sep3x3_bn)."""

    def __init__(self, in_channels: int, out_channels: int, activation: str,
                 rate: int = 1) -> None:
        super().__init__(OrderedDict({
            "depthwise": nn.Conv2d(in_channels, in_channels, 3, padding=rate, dilation=rate,
                                   groups=in_channels, bias=False),
            "depthwise_norm": nn.BatchNorm2d(in_channels),
            "depthwise_activation": make_activation(activation),
            "pointwise": Pointwise(in_channels, out_channels),
            "pointwise_norm": nn.BatchNorm2d(out_channels),
            "pointwise_activation": make_activation(activation),
        }))


class Aspp(nn.Module):
    """Atrous pyramid of one rate without pooling: [separable 3x3 at `rate`, 1x1 conv+BN+act]
    concatenated, then 1x1 conv+BN+act (official decoders.py ASPPModule, use_gap=False)."""

    def __init__(self, in_channels: int, out_channels: int, affine: bool, activation: str,
                 rate: int) -> None:
        super().__init__()
        self.atrous = SeparableBlock(in_channels, out_channels, activation, rate)
        self.pointwise = conv_bn(in_channels, out_channels, 1, affine, activation)
        self.fuse = conv_bn(2 * out_channels, out_channels, 1, affine, activation)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fuse(torch.cat([self.atrous(x), self.pointwise(x)], dim=1))


class AsppHead(nn.Module):
    """The official supernet's end part (decoders.py Dn_AutoDecoder): one ASPP per width
    level of the last layer to `channels`, concat, 3x3 conv+BN+act, 3x3 conv (with bias)
    to the image channels."""

    def __init__(self, level_channels: list[int], channels: int, out_channels: int,
                 affine: bool, activation: str) -> None:
        super().__init__()
        self.aspps = nn.ModuleList(Aspp(c, channels, affine, activation, ASPP_RATE)
                                   for c in level_channels)
        mixed = channels * len(level_channels)
        self.mix = conv_bn(mixed, mixed, 3, affine, activation)
        self.out = nn.Conv2d(mixed, out_channels, 3, padding=1)

    def forward(self, features: list[torch.Tensor]) -> torch.Tensor:
        mixed = torch.cat([aspp(x) for aspp, x in zip(self.aspps, features)], dim=1)
        return self.out(self.mix(mixed))  # (B, C_in, H, W)


class Decoder(nn.Module):
    """The official derived network's end part (decoders.py Dn_Decoder with USE_ASPP False,
    as train_s30.yaml sets): 1x1 conv+BN+act of the activated last cell to 128 channels and
    of the endpoint (a level-0 feature map) to 48, concat, two separable blocks, 3x3 conv."""

    def __init__(self, endpoint_channels: int, last_channels: int, out_channels: int,
                 activation: str) -> None:
        super().__init__()
        self.activation = make_activation(activation)
        self.last = conv_bn(last_channels, DECODER_CHANNELS, 1, True, activation)
        self.endpoint = conv_bn(endpoint_channels, ENDPOINT_CHANNELS, 1, True, activation)
        joined = DECODER_CHANNELS + ENDPOINT_CHANNELS
        self.blocks = nn.Sequential(SeparableBlock(joined, DECODER_CHANNELS, activation),
                                    SeparableBlock(DECODER_CHANNELS, DECODER_CHANNELS, activation))
        self.out = nn.Conv2d(DECODER_CHANNELS, out_channels, 3, padding=1)

    def forward(self, endpoint: torch.Tensor, last: torch.Tensor) -> torch.Tensor:
        joined = torch.cat([self.endpoint(endpoint), self.last(self.activation(last))], dim=1)
        return self.out(self.blocks(joined))  # (B, C_in, H, W)
