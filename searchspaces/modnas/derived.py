"""The discrete MoD-NAS network a genotype describes (MoD-NAS Fig. 2(b-c)).

Each stage's U-net keeps, per layer, its chosen op at its kept channel count
(physically narrower: a layer reading c_in and writing c_out channels is a
plain c_in -> c_out module) and, per normal layer, its one kept input path;
layers that the block output does not reach are dropped. Channel counts
follow `plan.py`; the stem and the skip joins follow the genotype's `stem` and
`skip_join` (version 1: one searched conv, added skips; `skeleton.py`).
The unfolding (T stages, learnable delta_t / eta_t) wraps the denoisers as in
the supernet: with `share_architecture` the genotype's one denoiser is built T
times, each copy with its own weights. Everything structural comes from the genotype.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from searchspaces.genotype import Genotype
from searchspaces.modnas.operations import OPS
from searchspaces.modnas.plan import BlockPlan, LayerPlan, arch_structure, unet_plan
from searchspaces.modnas.skeleton import (
    JOIN_KERNELS,
    AddJoin,
    ConcatJoin,
    UNetSkeleton,
    fixed_stem,
    head,
    stem,
)
from searchspaces.modnas.unfolding import ModelGuidedUnfolding


def build_layer(layer: LayerPlan, split: bool = False) -> nn.Module:
    """The layer's op; `split`: a down op as (conv, resampling) (concatenating joins)."""
    spec = OPS[layer.op]
    build = spec.split if split and spec.split is not None else spec.build
    return build(layer.in_channels, layer.out_channels)


def build_joins(encoders: list[BlockPlan], decoders: list[BlockPlan],
                skip_join: str) -> list[nn.Module]:
    if skip_join == "add":
        return [AddJoin() for _ in encoders]
    return [ConcatJoin(decoders[level + 1].sample.out_channels, block.sample.out_channels,
                       JOIN_KERNELS[skip_join]) for level, block in enumerate(encoders)]


class DerivedBlock(nn.Module):
    """The alive normal layers of one block, each reading its one kept input."""

    def __init__(self, plan: BlockPlan) -> None:
        super().__init__()
        self.inputs = {j: layer.input for j, layer in enumerate(plan.layers, start=1)
                       if layer.alive}
        self.layers = nn.ModuleDict({str(j): build_layer(plan.layers[j - 1])
                                     for j in self.inputs})

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        outputs = {0: x}  # 0 = block input, j = layer j
        for j, source in self.inputs.items():  # ascending: a layer reads an earlier output
            outputs[j] = self.layers[str(j)](outputs[source])
        return outputs[max(self.inputs)]  # layer 3, always alive


class DerivedUNet(UNetSkeleton):
    def __init__(self, denoiser: dict[str, Any], in_channels: int,
                 structure: tuple[str, str] = ("add", "searched")) -> None:
        skip_join, stem_kind = structure
        encoders, decoders = unet_plan(denoiser, skip_join)
        build_stem = fixed_stem if stem_kind == "fixed" else stem
        split = skip_join in JOIN_KERNELS
        super().__init__(
            len(decoders), build_stem(in_channels, denoiser["stem"]["channels"]),
            encoders=[DerivedBlock(block) for block in encoders],
            downs=[build_layer(block.sample, split) for block in encoders],
            decoders=[DerivedBlock(block) for block in decoders],
            ups=[build_layer(block.sample) for block in decoders[1:]],
            head_conv=head(decoders[0].out_channels, in_channels),
            joins=build_joins(encoders, decoders, skip_join), split_downs=split,
        )


class ModNASNetwork(ModelGuidedUnfolding):
    """T derived U-nets inside the model-guided unfolding (or one, without it)."""

    prefers_nhwc = True  # channels_last: 1.1-1.4x faster CPU training step (measured)

    def __init__(self, genotype: Genotype, in_channels: int) -> None:
        arch = genotype.arch
        structure = arch_structure(arch)
        shared = arch.get("share_architecture", False)  # version 3; one denoiser, T stages
        stage_archs = arch["denoisers"] * arch["stages"] if shared else arch["denoisers"]
        denoisers = [DerivedUNet(d, in_channels, structure) for d in stage_archs]
        super().__init__(denoisers, arch["unfolding"])
