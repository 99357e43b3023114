"""Options of the "superkernel" search space (Mozejko et al., "Superkernel Neural
Architecture Search for Image Denoising", CVPRW 2020): the backbone and its size, the
structural distribution over kernel sizes and filter counts (Secs. 4.1-4.4) and its
Gumbel temperature; an option the study leaves out takes the paper's setting for the
chosen backbone (Secs. 5.2, 5.3.1).
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, field_validator, model_validator

from searchspaces.registry import SpaceOptions
from searchspaces.superkernel.temperature import TemperatureSchedule

# Paper settings per backbone, used where the study leaves an option out (Secs. 5.2, 5.3.1).
BACKBONE_DEFAULTS: dict[str, dict[str, Any]] = {
    "resunet": {"kernel_sizes": (3, 5), "growth_rates": (0.2, 0.4, 0.6), "blocks_per_level": 2},
    "attention_unet": {
        "kernel_sizes": (3, 5, 7), "growth_rates": (1.0, 0.5, 0.25), "blocks_per_level": 1
    },
}


class SuperkernelOptions(SpaceOptions):
    backbone: Literal["resunet", "attention_unet"] = "resunet"  # SkipInit / multi-attentional
    # structural distribution (Secs. 4.1-4.4); "none": the no-superkernel baseline
    superkernel: Literal["joint", "factorized", "filterwise", "filterwise_attention", "none"] = (
        "joint"
    )
    mode: Literal["full", "separate"] = "full"  # one masked conv / exact, a conv per kernel size
    # SkipInit U-net: "paper" (Sec. 3.2: per-level 3x3 conv + act, channel attention after
    # each decoder concat) or "compact" (one head conv, 1x1 merges); attention U-net: unused
    layout: Literal["paper", "compact"] = "paper"
    activation: Literal["relu", "prelu"] = "relu"  # after every conv (the paper used both)
    # candidate k, odd in 1-MAX_KERNEL (default per backbone: (3, 5) / (3, 5, 7))
    kernel_sizes: tuple[int, ...] = Field(max_length=8)
    # candidate filters as fractions in (0, 1] of the level width
    growth_rates: tuple[float, ...] = Field(max_length=8)
    depth: int = Field(3, ge=1, le=8)  # 1-8 stride-2 downsamplings (Model 1: 3, Model 2: 2)
    width: int = Field(32, ge=1, le=1024)  # level-0 width 1-1024 (Model 1: 32, Model 2: 64)
    blocks_per_level: int = Field(ge=1, le=16)  # 1-16 DCR blocks per level (default 2 / 1)
    num_subnets: int = Field(1, ge=1, le=16)  # 1-16 parallel U-net bodies (paper: 1, 3, 6)
    # Gumbel temperature {start, end, steps}: exponential decay by training step (ours)
    temperature: TemperatureSchedule = TemperatureSchedule()
    key_dim: int = Field(4, ge=2, le=256)  # l, columns of the attention key matrix V (F x l)
    # initial SkipInit scalar in [-10, 10] (paper: 0, identity blocks)
    skipinit_scale: float = Field(0.0, ge=-10, le=10)
    fixed_kernel_size: int | None = None  # baseline kernel (default: largest candidate)
    fixed_growth: float | None = None  # baseline growth rate (default: largest candidate)

    @model_validator(mode="before")
    @classmethod
    def _backbone_defaults(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            return data
        for key in ("tau_start", "tau_end"):  # the earlier schedule, by epoch
            if key in data:
                raise ValueError(f"{key}: replaced by temperature.{key[4:]} (the temperature "
                                 "now anneals by step: temperature: {start, end, steps})")
        backbone = data.get("backbone", "resunet")  # a wrong type is the field's error
        return {**BACKBONE_DEFAULTS.get(backbone if isinstance(backbone, str) else "", {}),
                **data}

    @field_validator("kernel_sizes")
    @classmethod
    def _odd_kernels(cls, value: tuple[int, ...]) -> tuple[int, ...]:
        if not value:
            raise ValueError("the candidate set of kernel sizes must not be empty")
        for kernel_size in value:
            _check_kernel_size(kernel_size)
        if len(set(value)) != len(value):
            raise ValueError(f"candidate kernel sizes must be unique, got {list(value)}")
        return value

    @field_validator("growth_rates")
    @classmethod
    def _fractions(cls, value: tuple[float, ...]) -> tuple[float, ...]:
        if not value:
            raise ValueError("the candidate set of growth rates must not be empty")
        for rate in value:
            _check_fraction(rate)
        return value

    @field_validator("fixed_kernel_size")
    @classmethod
    def _odd_fixed_kernel(cls, value: int | None) -> int | None:
        return value if value is None else _check_kernel_size(value)

    @field_validator("fixed_growth")
    @classmethod
    def _fixed_fraction(cls, value: float | None) -> float | None:
        return value if value is None else _check_fraction(value)


MAX_KERNEL = 15


def _check_kernel_size(value: int) -> int:
    if not 1 <= value <= MAX_KERNEL or value % 2 == 0:
        raise ValueError(f"kernel size {value} must be odd and in 1-{MAX_KERNEL} "
                         "(centred slices)")
    return value


def _check_fraction(value: float) -> float:
    if not 0 < value <= 1:
        raise ValueError(f"filter fraction {value} must be in (0, 1]")
    return value
