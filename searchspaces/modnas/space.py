"""The registered "modnas" search space: options, factories, one-hot fixture, data check.

One registered space covers MoD-NAS and its ablation baselines through
options: `unfolding: false` is plain differentiable NAS (one U-net, y -> D(y),
Fig. 3) and `depth_search: skip_op` searches depth with a `skip` candidate
instead of dense connections (Fig. 4). By default the U-net is the paper's
(appendix Tables 7/8): `candidates: paper` (`extended`: this project's earlier
candidate set), `skip_join: concat` (`add`: the earlier added skips) and
`stem: fixed` (`searched`: the earlier single conv with width gates);
`operations.py` and `skeleton.py` describe them.

`width_penalty` (ours, not the paper's; off by default): the paper gives the
width gates no sparsity pressure: in a short search at its settings they stay near their
initial 1 and the width rule (Eq. 10a) keeps nearly every channel. A positive
weight adds a gate term to the loss of every architecture step (`supernet.py`,
`arch_penalty`): `width_regularizer: l1` the mean gate, which shrinks every gate
about evenly, so the width rule (rho of a row's gate mass) keeps nearly every
channel; `hoyer` the mean per-row ||g||_1 / (sqrt(n) ||g||_2), blind to scale as the
width rule is, which pulls the gates apart. Measured on a T = 1 search at width 64
(Train400, 36 architecture steps, arch Adam 0.05): no term 89% of the full-width
parameters kept, l1 1.0 96% (val PSNR 21.3 against 24.9), hoyer 1.0 50% (24.7).

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

import math
from dataclasses import replace
from typing import Any, Literal

import torch
import torch.nn.functional as F
from pydantic import Field, field_validator
from torch import nn

from searchspaces.genotype import Genotype
from searchspaces.modnas.arch import (
    multiple_within_width,
    one_stage_without_unfolding,
    validate_arch,
)
from searchspaces.modnas.derived import ModNASNetwork
from searchspaces.modnas.operations import CANDIDATE_SETS, OPS, SKIP
from searchspaces.modnas.plan import full_width_arch
from searchspaces.modnas.supernet import GENOTYPE_VERSION, SPACE_NAME, ModNASSupernet
from searchspaces.modnas.unet import NUM_LAYERS, kept_channel_indices
from searchspaces.registry import SearchSpace, SpaceOptions, register_space

MIN_BOTTOM = 4  # pixels per side at the lowest level of a training patch
MAX_WIDTH_PENALTY = 10.0  # the MSE of a denoised patch is ~1e-3: 10 is already all penalty


class ModNASOptions(SpaceOptions):
    unfolding: bool = True  # model-guided unfolding; False: plain differentiable NAS (Fig. 3)
    stages: int = Field(3, le=32)  # T, unfolded stages (paper: 3 in search; 1, 3, 6 retrained)
    depth_search: Literal["dense", "skip_op"] = "dense"  # dense paths (gamma) or a skip op
    levels: int = Field(4, le=10)  # U-net resolution levels (4, as DPDNN)
    width: int = Field(64, le=4096)  # full width of every layer before the width search
    rho: float = Field(0.9, gt=0, le=1)  # kept fraction of a layer's gate mass (Eq. 10a)
    channel_multiple: int = Field(8, le=4096)  # m: kept channels rounded up to a multiple
    candidates: str = "paper"  # named candidate set: paper (Tables 7/8) or extended
    normal_ops: tuple[str, ...] | None = None  # candidates of normal layers (None: the set's)
    down_ops: tuple[str, ...] | None = None  # of down-sampling layers (None: the set's)
    up_ops: tuple[str, ...] | None = None  # of up-sampling layers (None: the set's)
    # concat + a 3x3 conv to half the channels (paper: the Table 7 count), the same with a
    # 1x1 conv (the reading of the text; 366,909 parameters for Table 7), or add
    skip_join: Literal["concat", "concat1x1", "add"] = "concat"
    stem: Literal["fixed", "searched"] = "fixed"  # two fixed convs (paper) or one gated conv
    stem_channels: int | None = Field(None, ge=1)  # fixed stem width; None: 3/4 of width
    # one architecture for all T stages (the paper's: Table 2's parameters grow linearly
    # in T); false: one searched architecture per stage (`supernet.py`)
    share_architecture: bool = True
    # retraining: the searched genotype with every searched channel count at the full width
    # (Table 1's full-width row on the same genotype as its width-searched row); the run
    # keeps the searched genotype's arch_hash
    full_width: bool = False
    # ours: weight of a width-gate term in the architecture loss (0: the paper's, none);
    # l1: the mean gate; hoyer: the mean per-row ||g||_1 / (sqrt(n) ||g||_2), scale-free
    width_penalty: float = Field(0.0, ge=0, le=MAX_WIDTH_PENALTY)
    width_regularizer: Literal["l1", "hoyer"] = "l1"

    @field_validator("candidates")
    @classmethod
    def _known_candidate_set(cls, value: str) -> str:
        if value not in CANDIDATE_SETS:
            raise ValueError(f"unknown candidate set {value!r} (known: "
                             f"{', '.join(CANDIDATE_SETS)})")
        return value

    @field_validator("stem_channels")
    @classmethod
    def _stem_within_width(cls, value: int | None, info: Any) -> int | None:
        width = info.data.get("width")
        if value is not None and width is not None and value > width:
            raise ValueError(f"stem_channels {value} is larger than the width {width}")
        return value

    @field_validator("stages", "levels", "width", "channel_multiple")
    @classmethod
    def _at_least_one(cls, value: int, info: Any) -> int:
        if value < 1:
            raise ValueError(f"{info.field_name} must be >= 1, got {value}")
        return value

    _stages = field_validator("stages")(one_stage_without_unfolding)
    _multiple = field_validator("channel_multiple")(multiple_within_width)

    @field_validator("normal_ops", "down_ops", "up_ops")
    @classmethod
    def _known_ops_of_role(cls, value: tuple[str, ...] | None,
                           info: Any) -> tuple[str, ...] | None:
        if value is None:
            return value
        role = info.field_name.removesuffix("_ops")
        wrong = [name for name in value if name not in OPS or OPS[name].role != role]
        if SKIP in value:
            raise ValueError("'skip' is added to the normal ops by depth_search: skip_op")
        if wrong or not value:
            known = ", ".join(n for n, spec in OPS.items() if spec.role == role and n != SKIP)
            raise ValueError(f"unknown {role} op {wrong[:1]} (known: {known})")
        if len(set(value)) != len(value):
            raise ValueError(f"{info.field_name} must be unique, got {list(value)}")
        return value

    def normal_primitives(self) -> tuple[str, ...]:
        normal = self.normal_ops or CANDIDATE_SETS[self.candidates][0]
        return normal + ((SKIP,) if self.depth_search == "skip_op" else ())

    def down_primitives(self) -> tuple[str, ...]:
        return self.down_ops or CANDIDATE_SETS[self.candidates][1]

    def up_primitives(self) -> tuple[str, ...]:
        return self.up_ops or CANDIDATE_SETS[self.candidates][2]

    def all_primitives(self) -> tuple[str, ...]:
        return self.normal_primitives() + self.down_primitives() + self.up_primitives()

    def fixed_stem_channels(self) -> int:
        """The fixed stem's width: given, or 3/4 of the width rounded up to a multiple of
        channel_multiple (48 at the width 64: Tables 7/8), at most the width."""
        if self.stem_channels is not None:
            return self.stem_channels
        quarter = math.ceil(3 * self.width / 4 / self.channel_multiple) * self.channel_multiple
        return min(self.width, quarter)


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
