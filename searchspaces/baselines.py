"""Hand-designed reference denoisers that the searched networks are compared against.

DnCNN (Zhang et al., "Beyond a Gaussian Denoiser: Residual Learning of Deep CNN
for Image Denoising", TIP 2017): a plain stack of 3x3 convolutions that predicts
the noise, so that the denoised image is `x - f(x)` (residual learning, Eq. 1).
The layer layout matches the published weights of `reference/dncnn_sigma25.pth`
(KAIR model zoo, BatchNorm folded into the convolutions).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from torch import nn

from searchspaces.genotype import Genotype, require_keys
from searchspaces.registry import SearchSpace, SpaceOptions, Supernet, register_space


class DnCNN(nn.Module):
    """DnCNN: conv+ReLU, (depth - 2) x conv(+BN)+ReLU, conv; output = input - noise estimate.

    Without BatchNorm the state-dict keys are `model.{0,2,...,2*(depth-2)}` for the
    convolutions followed by ReLUs and `model.{2*(depth-1)}` for the last one, which
    is the layout of the reference weights (depth 17: `model.0` ... `model.32`).
    """

    prefers_nhwc = True  # channels_last: 1.1-1.4x faster CPU training step (measured)

    def __init__(
        self,
        in_channels: int = 1,
        depth: int = 17,
        channels: int = 64,
        batch_norm: bool = False,
    ) -> None:
        super().__init__()
        if depth < 2:
            raise ValueError(f"DnCNN depth must be at least 2, got {depth}")
        layers: list[nn.Module] = [_conv(in_channels, channels, bias=True), nn.ReLU(inplace=True)]
        for _ in range(depth - 2):
            layers.append(_conv(channels, channels, bias=not batch_norm))
            if batch_norm:
                layers.append(nn.BatchNorm2d(channels))
            layers.append(nn.ReLU(inplace=True))
        layers.append(_conv(channels, in_channels, bias=True))
        self.model = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x - self.model(x)  # (B, C, H, W)


def _conv(in_channels: int, out_channels: int, bias: bool) -> nn.Conv2d:
    return nn.Conv2d(in_channels, out_channels, kernel_size=3, padding=1, bias=bias)


def load_reference_dncnn(path: str | Path) -> DnCNN:
    """Build a BatchNorm-free DnCNN shaped like the weights at `path` and load them strictly."""
    state = torch.load(path, map_location="cpu", weights_only=True)
    first = state["model.0.weight"]  # (channels, in_channels, 3, 3)
    num_convs = sum(1 for key in state if key.endswith(".weight"))
    model = DnCNN(in_channels=first.shape[1], depth=num_convs, channels=first.shape[0])
    model.load_state_dict(state, strict=True)
    return model


class DncnnOptions(SpaceOptions):
    """Nothing is searched: the genotype says depth, width and BatchNorm."""


@register_space
class DncnnSpace(SearchSpace):
    """DnCNN as a fixed baseline row of a study: an arm names a `dncnn` genotype
    (e.g. studies/genotypes/dncnn-17.json: depth 17, 64 channels, BatchNorm, the
    published grey model) and retrains and tests it with the study's protocol."""

    name = "dncnn"
    options_model = DncnnOptions
    searchable = False
    ARCH_KEYS = ("depth", "channels", "batch_norm")

    def build_supernet(self, options: dict[str, Any], in_channels: int) -> Supernet:
        raise ValueError("search space 'dncnn' has nothing to search: give the arm a genotype")

    def build_derived(self, genotype: Genotype, options: dict[str, Any],
                      in_channels: int) -> nn.Module:
        arch = genotype.arch
        return DnCNN(in_channels, arch["depth"], arch["channels"], arch["batch_norm"])

    def validate_arch(self, genotype: Genotype) -> None:
        arch = require_keys(genotype.arch, self.ARCH_KEYS, "arch")
        for key in ("depth", "channels"):
            if isinstance(arch[key], bool) or not isinstance(arch[key], int) or arch[key] < 2:
                raise ValueError(f"arch.{key}: expected an integer of at least 2")
        if not isinstance(arch["batch_norm"], bool):
            raise ValueError("arch.batch_norm: expected true or false")

    def tiny_options(self) -> dict[str, Any]:
        return {}

    def set_one_hot(self, supernet: Supernet) -> Genotype:
        raise ValueError("search space 'dncnn' has no supernet")


def dncnn_genotype(depth: int = 17, channels: int = 64, batch_norm: bool = True) -> Genotype:
    arch = {"depth": depth, "channels": channels, "batch_norm": batch_norm}
    return Genotype(DncnnSpace.name, (), arch, {"paper": "Zhang et al., TIP 2017"})


def baseline_genotype(name: str, published: bool = False) -> Genotype:
    """The network of a study's `baselines:` entry: DnCNN-17 with BatchNorm to train, or
    without (folded into biased convolutions) to hold the published weights."""
    if name != DncnnSpace.name:
        raise ValueError(f"unknown baseline {name!r} (known: {DncnnSpace.name})")
    return dncnn_genotype(batch_norm=not published)
