"""Options of the "hinas" search space (Zhang et al., "Memory-Efficient Hierarchical
Neural Architecture Search for Image Restoration", IJCV 2022, the journal version of
HiNAS, CVPR 2020), and the two variants of its networks.

`variant: code` (the default) builds the networks of the official code, hkzhang91/HiNAS,
that produced the published numbers (configs/dn/BSD500_3c4n: 03_search_CR_R0.yaml,
03_train_CR_R0/train_s30.yaml); `variant: paper` builds what the journal text describes.
Each difference is one option; an option left unset takes the variant's value
(`HiNASOptions.network()`), so a retrain that only changes `variant` changes them all. The
differences:

- `stem` (both networks). Paper Sec. 3.2 'start-part': two 3x3 convs. Code: the second conv
  runs on the activation of the first applied twice (dn_supernet.py / dn_compnet.py
  forward: stem1 ends in LeakyReLU, then F.leaky_relu again), and in the supernet it maps
  straight to a level-0 cell output (N * W channels, stem2 of Dn_supernet), which is then
  routed like any level-0 cell.
- `two_back` (both). Paper Eq. 5: f_{l-2}^i, a 1x1 projection of the output of cell
  C_{l-2}^i. Code, supernet (Dn_supernet.forward, `inputs_1 = inputs_0`): the beta-weighted
  mixture the cell (l-1, i) received, no projection; layer 0 takes a 3x3 conv+BN of the
  stem's first conv (reduce1) and a level missing one layer back takes a 1x1 conv+BN of the
  level below (upsamplers). Derived network (Dn_compnet.forward): layer 0 takes the stem's
  first conv, layer 1 the stem output (paper: the stem output for both).
- `projection` (derived network). Paper: 1x1 conv (+BN). Code (dn_compnet.py
  DeepLabScaler_Width): activation -> 1x1 conv -> BN. The supernet's routes are 1x1 conv+BN
  in both (dn_supernet.py Router_Width).
- `decoder` (derived network's end part). Paper Sec. 3.2 'end-part': two convs to the
  residual. Code (decoders.py Dn_Decoder, USE_ASPP False): 1x1 conv+BN+act of the
  activated last cell to 128 channels and of an endpoint to 48, concat, two separable
  3x3 blocks, 3x3 conv. The endpoint (Dn_compnet.__init__) is the last level-0 cell unless
  that is the last layer or there is none; then a 3x3 conv+BN of the stem output to N * W,
  a module the code builds for every path (unused, it still counts as parameters).
- `supernet_head` (supernet's end part). Paper: as the derived one. Code (decoders.py
  Dn_AutoDecoder): one ASPP (separable 3x3 at rate 16 and 1x1, fused by a 1x1) per level of
  the last layer to N * W channels, concat, 3x3 conv+BN+act, 3x3 conv.
- `supernet_output`. Paper (Sec. 3.2, Fig. 4a): x - r. Code (Dn_supernet.forward):
  sigmoid(x - r) (sigmoid(r) without residual learning); the search loss compares that with
  the clean image. The derived network outputs x - r in both.

Not network differences, so not here: the loss (SSIM padding, lambda), the schedules, the
optimizers and the data settings (studyspec/trainables). The official supernet keeps beta
rows only for existing sources (18 logits at 3 x 3 against 27 here, masked): 9 parameters
of difference that change nothing.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from itertools import pairwise
from typing import Annotated, Any, Literal

from pydantic import Field, field_validator, model_validator

from searchspaces.hinas.cells import NONE
from searchspaces.hinas.deform import check_deformable_widths
from searchspaces.hinas.operations import JOURNAL_PRIMITIVES, OPS
from searchspaces.registry import SpaceOptions

MAX_MULTIPLIER = 16
Choice = Literal["code", "paper"]


@dataclass(frozen=True)
class Network:
    """Where the networks follow the official code or the paper (module docstring)."""

    stem: Choice
    two_back: Choice
    projection: Choice
    decoder: Choice
    supernet_head: Choice
    supernet_output: Choice


CHOICES = tuple(field.name for field in fields(Network))
VARIANTS = {name: Network(**dict.fromkeys(CHOICES, name)) for name in ("code", "paper")}


class HiNASOptions(SpaceOptions):
    num_layers: int = Field(3, le=32)  # L, 1-32 layers of cells (journal denoising: 3)
    num_nodes: int = Field(4, le=16)  # N, 1-16 intermediate nodes per cell (journal: 4)
    width: int = Field(10, le=1024)  # W, 1-1024 basic node width (10 search, 20 retrain)
    # gamma per level, ascending in (0, 16], at most 8 levels (CVPR: 1, 2, 4)
    width_multipliers: tuple[float, ...] = Field((1.0, 1.5, 2.0), max_length=8)
    stem_channels: int = Field(64, le=4096)  # 1-4096: the start part (and head's hidden conv)
    layerwise_alphas: bool = True  # LWAS: one alpha set per layer
    cell_sharing: bool = True  # Eq. 5 (True) or Auto-DeepLab Eq. 6 (False)
    residual: bool = True  # ResL: predict the noise and subtract it
    activation: Literal["leaky_relu", "relu"] = "leaky_relu"  # journal / CVPR
    primitives: tuple[str, ...] = JOURNAL_PRIMITIVES  # candidate ops, keys of OPS
    variant: Choice = "code"  # official code (published numbers) or paper text, per option:
    stem: Choice | None = None  # None: the variant's (module docstring for each)
    two_back: Choice | None = None
    projection: Choice | None = None
    decoder: Choice | None = None
    supernet_head: Choice | None = None
    supernet_output: Choice | None = None
    # manual outer widths of the derived network: each layer's node width instead of its
    # searched level (journal Sec. 4.3, Table 3, Fig. 7: HiNAS-w40 [40, 40, 40], HiNAS-wm
    # [20, 40, 80], both at the retraining width 20); None: the searched levels
    layer_widths: tuple[Annotated[int, Field(ge=1, le=4096)], ...] | None = Field(
        None, min_length=1, max_length=32)

    def network(self) -> Network:
        """The network choices: each option as given, else the variant's."""
        preset = VARIANTS[self.variant]
        return Network(**{name: getattr(self, name) or getattr(preset, name)
                          for name in CHOICES})

    @field_validator("num_layers", "num_nodes", "width", "stem_channels")
    @classmethod
    def _at_least_one(cls, value: int, info: Any) -> int:
        if value < 1:
            raise ValueError(f"{info.field_name} must be >= 1, got {value}")
        return value

    @field_validator("layer_widths")
    @classmethod
    def _one_width_per_layer(cls, value: tuple[int, ...] | None, info: Any
                             ) -> tuple[int, ...] | None:
        layers = info.data.get("num_layers")
        if value is not None and layers is not None and len(value) != layers:
            raise ValueError(f"{len(value)} widths for num_layers {layers}")
        return value

    @field_validator("width_multipliers")
    @classmethod
    def _ascending_positive(cls, value: tuple[float, ...]) -> tuple[float, ...]:
        if not value:
            raise ValueError("width_multipliers must not be empty")
        if any(not 0 < g <= MAX_MULTIPLIER for g in value):
            raise ValueError(f"width_multipliers must be positive and at most {MAX_MULTIPLIER}, "
                             f"got {list(value)}")
        if any(b <= a for a, b in pairwise(value)):
            raise ValueError(f"width_multipliers must be strictly ascending, got {list(value)}")
        return value

    @field_validator("primitives")
    @classmethod
    def _known_primitives(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        unknown = [name for name in value if name not in OPS]
        if unknown:
            raise ValueError(f"unknown primitive {unknown[0]!r} (known: {', '.join(OPS)})")
        if len(set(value)) != len(value):
            raise ValueError(f"primitives must be unique, got {list(value)}")
        if all(name == NONE for name in value):
            raise ValueError("primitives need at least one op other than 'none'")
        return value

    @model_validator(mode="after")
    def _widths_positive(self) -> HiNASOptions:
        for gamma in self.width_multipliers:
            if int(self.width * gamma) < 1:
                raise ValueError(f"width {self.width} x multiplier {gamma} gives 0 channels")
        check_deformable_widths(self.primitives, self.width, self.width_multipliers)
        return self
