"""Options of the "modnas" search space (MoD-NAS: "Searching Efficient Model-guided Deep
Network for Image Denoising").

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
"""

from __future__ import annotations

import math
from typing import Any, Literal

from pydantic import Field, ValidationInfo, field_validator

from searchspaces.modnas.operations import CANDIDATE_SETS, OPS, SKIP
from searchspaces.registry import SpaceOptions

MAX_WIDTH_PENALTY = 10.0  # the MSE of a denoised patch is ~1e-3: 10 is already all penalty


def multiple_within_width(value: int, info: ValidationInfo) -> int:
    """channel_multiple <= width (a field validator here and of the genotype's arch)."""
    width = info.data.get("width")
    if width is not None and value > width:
        raise ValueError(f"{value} is larger than the width {width}")
    return value


def one_stage_without_unfolding(value: int, info: ValidationInfo) -> int:
    """stages == 1 without unfolding (a field validator here and of the genotype's arch)."""
    if info.data.get("unfolding") is False and value != 1:
        raise ValueError(f"without unfolding there is one denoiser, got {value}")
    return value


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
    # 1x1 conv (another reading of the text; 366,909 parameters for Table 7), or add
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
