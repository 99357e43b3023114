"""Building blocks shared by the two superkernel backbones, searched or derived
(Mozejko et al. 2020, Sec. 3, Figs. 2-4).

The searchable convolutions are created by a *slot factory*: given the slot's
name (its key in the genotype), its input channels and the width of its U-net
level, it returns a module computing act(conv(x)) and its output channels. The
supernet's factory makes a `SuperConv2d`; the derived network's factory makes a
plain `ConvReLU` of the chosen kernel size and filter count. Everything else is
the same code, so the derived network is the supernet's architecture with the
chosen slices, physically smaller.

`activation` ("relu" or "prelu", Sec. 4.5.3: the paper used both) is the
non-linearity after every convolution of the network (slots, DCR output convs,
per-level convs, downsampling); the channel-attention gate keeps RCAN's ReLU.
PReLU has one learned slope per layer (PyTorch's default, initialised to 0.25).
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

# (slot name, input channels, level width) -> (act(conv) module, output channels)
SlotFactory = Callable[[str, int, int], tuple[nn.Module, int]]
ATTENTION_REDUCTION = 8  # (ours; RCAN uses 16) channel squeeze of the attention blocks
# (ours) initial bias of the squeeze: every hidden unit of the gate starts alive (pooled
# features are small, and a gate whose ReLUs all start negative never learns)
ATTENTION_SQUEEZE_BIAS = 1.0
ACTIVATIONS = ("relu", "prelu")


def activation_layer(name: str) -> nn.Module:
    """ReLU, or PReLU with one learned slope (a positively homogeneous function either
    way, which the "separate" superkernel relies on)."""
    if name == "relu":
        return nn.ReLU()
    if name == "prelu":
        return nn.PReLU()
    raise ValueError(f"activation: unknown {name!r} (known: {', '.join(ACTIVATIONS)})")


def conv(in_channels: int, out_channels: int, kernel_size: int = 3, stride: int = 1) -> nn.Conv2d:
    return nn.Conv2d(in_channels, out_channels, kernel_size, stride, padding=kernel_size // 2)


class ConvReLU(nn.Sequential):
    """A plain convolution followed by the activation (ReLU by default): a distilled
    superkernel slot, a DCR output conv, a per-level conv."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int = 3,
                 activation: str = "relu") -> None:
        super().__init__(conv(in_channels, out_channels, kernel_size),
                         activation_layer(activation))


class Downsample(nn.Sequential):
    """Stride-2 3x3 convolution + activation (Sec. 3.1)."""

    def __init__(self, in_channels: int, out_channels: int, activation: str = "relu") -> None:
        super().__init__(conv(in_channels, out_channels, stride=2), activation_layer(activation))


class Upsample(nn.Sequential):
    """Sub-pixel upsampling (Sec. 3.1, after SGN): 3x3 conv to 4C, pixel shuffle by 2."""

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__(conv(in_channels, 4 * out_channels), nn.PixelShuffle(2))


class ChannelAttention(nn.Module):
    """Channel attention block of RCAN (Zhang et al., ECCV 2018): x * sigmoid(MLP(avgpool x))."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        hidden = max(1, channels // ATTENTION_REDUCTION)
        self.gate = nn.Sequential(
            nn.AdaptiveAvgPool2d(1),
            nn.Conv2d(channels, hidden, 1),
            nn.ReLU(),
            nn.Conv2d(hidden, channels, 1),
            nn.Sigmoid(),
        )
        nn.init.constant_(self.gate[1].bias, ATTENTION_SQUEEZE_BIAS)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.gate(x)  # (B, C, H, W)


class DCRBlock(nn.Module):
    """Densely connected residual block (Park et al., DHDN, CVPRW 2019; paper Figs. 3-4).

    Two searchable act(conv) slots with dense concatenation, then a 3x3 act(conv)
    that restores the width: branch = f([x, h1, h2]), h1 = s1(x), h2 = s2([x, h1]).
    Output x + branch, or x + alpha * branch with SkipInit (De & Smith 2020): a
    trainable scalar alpha, initialised to `skipinit_scale` (0 in the paper, so the
    block starts as the identity). `skipinit_scale=None`: no scalar (the SK-DCR block
    of the attention U-net).
    """

    def __init__(
        self, name: str, channels: int, make_slot: SlotFactory, skipinit_scale: float | None,
        activation: str = "relu",
    ) -> None:
        super().__init__()
        self.first, first_channels = make_slot(f"{name}.sk0", channels, channels)
        dense = channels + first_channels
        self.second, second_channels = make_slot(f"{name}.sk1", dense, channels)
        self.fuse = ConvReLU(dense + second_channels, channels, activation=activation)
        self.scale = None if skipinit_scale is None else nn.Parameter(torch.tensor(skipinit_scale))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        first = self.first(x)  # (B, g1, H, W)
        second = self.second(torch.cat([x, first], dim=1))  # (B, g2, H, W)
        branch = self.fuse(torch.cat([x, first, second], dim=1))  # (B, C, H, W)
        return x + (branch if self.scale is None else self.scale * branch)


def dcr_stack(
    name: str, channels: int, count: int, make_slot: SlotFactory, skipinit_scale: float | None,
    activation: str = "relu",
) -> nn.Sequential:
    """`count` DCR blocks named `{name}.dcr0`, `{name}.dcr1`, ..."""
    return nn.Sequential(*[
        DCRBlock(f"{name}.dcr{i}", channels, make_slot, skipinit_scale, activation)
        for i in range(count)
    ])
