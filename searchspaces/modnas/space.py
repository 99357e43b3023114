"""The registered "modnas" search space (options in `options.py`): factories, one-hot
fixture, data check, genotype format.

Genotype `arch` format (JSON data only; validated by the typed models of `arch.py`):

    {
      "stages": 3,              # T (1 without unfolding); retrain.stages may change it
      "unfolding": true,        # model-guided update (Eq. 6b); false: y -> D(y)
      "levels": 4,              # U-net resolution levels
      "width": 64,              # full width of every layer (the supernet's)
      "channel_multiple": 8,    # m: kept channel counts are multiples of m (or the width)
      "depth_search": "dense",  # or "skip_op"
      "skip_join": "concat",    # "concat1x1" or "add" (version 2; absent in version 1: "add")
      "stem": "fixed",          # or "searched" (version 2; absent in version 1: "searched")
      "share_architecture": true,  # version 3 (absent before: false): one denoiser for
                                # every stage; false: one per stage
      "denoisers": [            # one (shared) or one per stage
        {"stem": {"channels": 48},  # the stem's width (fixed, or searched by gates)
         "encoder": [           # levels - 1 blocks, level 0 first
           {"layers": [{"op": "conv_3x3", "channels": 48, "input": 0},
                       {"op": "sep_3x3", "channels": 40, "input": 1},
                       {"op": "dil_3x3", "channels": 40, "input": 1}],
            "down": {"op": "down_conv_3x3", "channels": 24}}, ...],
         "decoder": [           # levels blocks, level 0 first; block 0 has no "up"
           {"layers": [...]},
           {"layers": [...], "up": {"op": "up_deconv_3x3", "channels": 32}}, ...]}
      ]
    }

A normal layer j (1..3) has its op, its kept output channels and its kept
input path (0 = the block input, i = layer i < j; layer 1 reads 0; with
skip_op, layer j reads j - 1). A `skip` op has `"channels": null` (it writes
what it reads). The block output is layer 3's output: layers it does not reach
through `input` are dead and not built. Sampling layers read the block output.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from searchspaces.genotype import Genotype
from searchspaces.modnas.arch import validate_arch
from searchspaces.modnas.derived import ModNASNetwork
from searchspaces.modnas.operations import OPS
from searchspaces.modnas.options import ModNASOptions
from searchspaces.modnas.plan import full_width_arch
from searchspaces.modnas.supernet import GENOTYPE_VERSION, SPACE_NAME, ModNASSupernet
from searchspaces.modnas.unet import NUM_LAYERS, kept_channel_indices
from searchspaces.registry import SearchSpace, register_space

MIN_BOTTOM = 4  # pixels per side at the lowest level of a training patch


@register_space
class ModNASSpace(SearchSpace):
    """MoD-NAS (Searching Efficient Model-guided Deep Network for Image Denoising)."""

    name = SPACE_NAME
    options_model = ModNASOptions
    default_strategy = "bilevel"
    genotype_version = GENOTYPE_VERSION  # 2: skip_join and stem (version 1: add, searched)
    bilevel_order = "weights_first"  # Algorithm 1: weights, then architecture

    def check_data(self, options: ModNASOptions, patch_size: int) -> None:  # type: ignore[override]
        factor = 2 ** (options.levels - 1)
        if patch_size % factor or patch_size < MIN_BOTTOM * factor:
            raise ValueError(
                f"options.levels: {options.levels} levels need patch_size to be a multiple of "
                f"{factor} and at least {MIN_BOTTOM * factor}, got {patch_size}"
            )

    def build_supernet(self, options: dict[str, Any], in_channels: int) -> ModNASSupernet:
        return ModNASSupernet(self.parse_options(options), in_channels)

    def build_derived(
        self, genotype: Genotype, options: dict[str, Any], in_channels: int
    ) -> nn.Module:
        """Everything structural comes from the genotype; `full_width` widens every searched
        channel count to the genotype's full width (`plan.full_width_arch`)."""
        if genotype.space != SPACE_NAME:
            raise ValueError(f"space: expected {SPACE_NAME!r}, got {genotype.space!r}")
        parsed = self.parse_options(options)
        self.validate_arch(genotype)
        if parsed.full_width:
            genotype = replace(genotype, arch=full_width_arch(genotype.arch))
        return ModNASNetwork(genotype, in_channels)

    def validate_arch(self, genotype: Genotype) -> None:
        validate_arch(genotype)

    def check_stages(self, options: ModNASOptions, stages: list[int]) -> None:  # type: ignore[override]
        """`retrain.stages` needs the unfolding, and one architecture shared by every stage
        unless it only repeats the searched T."""
        if not options.unfolding and stages != [1]:
            raise ValueError(f"{stages}: without unfolding (search_space.options.unfolding: "
                             "false) there is one denoiser: only [1]")
        if not options.share_architecture and stages != [options.stages]:
            raise ValueError(f"{stages}: one architecture per stage (search_space.options."
                             "share_architecture: false) retrains only at the searched "
                             f"stages [{options.stages}]")

    def at_stages(self, genotype: Genotype, stages: int) -> Genotype:
        """The genotype's one denoiser unrolled over `stages` stages (Table 2: one search
        retrained at T = 1, 3, 6); the same genotype when T is already `stages`."""
        arch = validate_arch(genotype)
        if stages == arch.stages:
            return genotype
        if not arch.unfolding or not arch.share_architecture:
            why = "has no unfolding" if not arch.unfolding else \
                "has one architecture per stage (share_architecture: false)"
            raise ValueError(f"{stages}: the genotype {why}; it is built at its "
                             f"{arch.stages} stage(s) only")
        provenance = {key: value for key, value in genotype.provenance.items()
                      if not key.startswith("params_")}  # counted at the searched T
        return replace(genotype, arch={**genotype.arch, "stages": stages},
                       provenance={**provenance, "searched_stages": arch.stages})

    def tiny_options(self) -> dict[str, Any]:
        return {"stages": 2, "levels": 2, "width": 8, "channel_multiple": 4}

    def set_one_hot(self, supernet: ModNASSupernet) -> Genotype:  # type: ignore[override]
        """Ops, channel counts and input paths cycle with (stage, block, layer); channel
        counts are those the width rule keeps for a one-hot gate pattern."""
        options = supernet.options
        counts = one_hot_counts(options)
        searched = 1 if options.share_architecture else options.stages
        denoisers = [one_hot_denoiser(options, stage, counts) for stage in range(searched)]
        return supernet.load_arch(denoisers)


# --- the one-hot fixture -------------------------------------------------------------
def one_hot_counts(options: ModNASOptions, logit: float = 10.0) -> list[int]:
    """Valid channel counts c that the width rule maps the gate pattern
    (c gates at softplus(logit), the rest at softplus(-logit)) back to."""
    multiple, width = options.channel_multiple, options.width
    candidates = sorted({*range(multiple, width + 1, multiple), width})
    counts = []
    for count in candidates:
        logits = torch.tensor([logit] * count + [-logit] * (width - count))
        if len(kept_channel_indices(F.softplus(logits), options.rho, multiple)) == count:
            counts.append(count)
    return counts or [width]


def one_hot_layer(ops: tuple[str, ...], counts: list[int], key: int) -> dict[str, Any]:
    op = ops[key % len(ops)]
    return {"op": op, "channels": counts[key % len(counts)] if OPS[op].gated else None}


def one_hot_block(options: ModNASOptions, key: int, counts: list[int]) -> list[dict[str, Any]]:
    layers = []
    for j in range(1, NUM_LAYERS + 1):
        dense = options.depth_search == "dense" and j > 1
        source = (key + j) % j if dense else j - 1
        layers.append({**one_hot_layer(options.normal_primitives(), counts, key + j),
                       "input": source})
    return layers


def one_hot_denoiser(options: ModNASOptions, stage: int, counts: list[int]) -> dict[str, Any]:
    levels = options.levels
    encoder = [{"layers": one_hot_block(options, stage + level, counts),
                "down": one_hot_layer(options.down_primitives(), counts, stage + level)}
               for level in range(levels - 1)]
    decoder = []
    for level in range(levels):
        key = stage + levels + level
        block = {"layers": one_hot_block(options, key, counts)}
        if level > 0:
            block["up"] = one_hot_layer(options.up_primitives(), counts, key)
        decoder.append(block)
    fixed = options.stem == "fixed"
    stem = {"channels": options.fixed_stem_channels() if fixed else counts[stage % len(counts)]}
    return {"stem": stem, "encoder": encoder, "decoder": decoder}
