"""The study-file schema (SPEC 5.1): strict, frozen pydantic models.

A study file is parsed once at the edge (`orchestrator.studyfile`) into these
models; unknown keys are errors that name their dotted path. Inside a trial
the plain-dict form is validated again with the same models.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class NoiseSpec(Strict):
    """Training degradation: AWGN (fixed sigma, list, or blind range) or JPEG."""

    type: Literal["awgn", "jpeg"] = "awgn"
    sigma: float | list[float] | None = None  # fixed sigma, or drawn per sample from a list
    sigma_range: tuple[float, float] | None = None  # blind: uniform in [low, high]
    quality: int | list[int] | None = None  # JPEG quality (drawn per sample from a list)

    @model_validator(mode="after")
    def _one_level_source(self) -> NoiseSpec:
        given = [k for k in ("sigma", "sigma_range", "quality") if getattr(self, k) is not None]
        if self.type == "awgn" and given not in (["sigma"], ["sigma_range"]):
            raise ValueError("awgn noise needs exactly one of 'sigma' or 'sigma_range'")
        if self.type == "jpeg" and given != ["quality"]:
            raise ValueError("jpeg degradation needs 'quality' (and no sigma)")
        return self

    def test_keys(self) -> list[str]:
        """Metric keys of the fixed levels this degradation is tested at."""
        if self.type == "jpeg":
            levels = self.quality if isinstance(self.quality, list) else [self.quality]
            return [f"q{int(q)}" for q in levels]
        if self.sigma_range is not None:
            return []
        levels = self.sigma if isinstance(self.sigma, list) else [self.sigma]
        return [f"sigma{level:g}" for level in levels]


class DataSpec(Strict):
    train: str = "embedded"  # dataset name (train400, embedded, ...) or a folder path
    test: list[str] = ["embedded"]  # test sets, evaluated after retraining
    # folder holding named datasets; --data-root overrides; None: ./data, else ../shared/datasets
    root: str | None = None
    color: bool = False  # RGB instead of luminance
    patch_size: int = Field(64, ge=8)
    augment: bool = True  # k*90 rotation + flip
    rescale: bool = False  # random bicubic rescale 0.8-1.2 (p=0.5)
    noise: NoiseSpec = NoiseSpec(sigma=25)
    val_fraction: float = Field(0.02, ge=0, lt=1)  # Validation-V share of the training images
    max_train_images: int | None = Field(None, ge=3)  # keep the first N images (smoke runs)


class OptimizerSpec(Strict):
    name: Literal["sgd", "adam"] = "adam"
    lr: float = Field(1e-3, gt=0)
    lr_min: float = Field(0.0, ge=0)  # end of the cosine / poly schedule
    schedule: Literal["cosine", "poly", "constant"] = "cosine"
    momentum: float = Field(0.9, ge=0, lt=1)  # SGD only
    betas: tuple[float, float] = (0.9, 0.999)  # Adam only
    weight_decay: float = Field(0.0, ge=0)


class LossSpec(Strict):
    """HiNAS Eq. 7: MSE + lambda * log10(1 / SSIM)."""

    ssim_lambda: float = Field(0.0, ge=0)
    average_terms: bool = False  # the HiNAS code divides the sum by 2


class SearchSpaceSpec(Strict):
    name: str
    options: dict[str, Any] = {}

    @model_validator(mode="after")
    def _known_space_and_options(self) -> SearchSpaceSpec:
        from pydantic import ValidationError

        from searchspaces.registry import get_space

        try:
            space = get_space(self.name)
        except KeyError as error:
            raise ValueError(error.args[0]) from None
        try:
            space.parse_options(self.options)
        except ValidationError as error:
            first = error.errors()[0]
            path = ".".join(str(p) for p in ("options", *first["loc"]))
            message = first["msg"].removeprefix("Value error, ")
            raise ValueError(f"{path}: {message}") from None
        return self

    def resolved_options(self) -> dict[str, Any]:
        from searchspaces.registry import get_space

        return get_space(self.name).parse_options(self.options).model_dump(mode="json")


class SearchSpec(Strict):
    """The differentiable inner loop (SPEC 1.5)."""

    strategy: Literal["bilevel", "joint"] | None = None  # None: the space's default_strategy
    epochs: int = Field(100, ge=1)
    steps_per_epoch: int = Field(100, ge=1)
    batch_size: int = Field(8, ge=1)
    warmup_epochs: int = Field(20, ge=0)  # weights only before architecture updates
    validate_from_epoch: int = Field(0, ge=0)  # best-on-validation from this epoch (0-based)
    patience: int | None = Field(None, ge=1)  # stop after this many evaluations w/o improvement
    select_by: Literal["score", "psnr"] = "score"  # best epoch / patience: val/score or val/psnr
    weight_optimizer: OptimizerSpec = OptimizerSpec(
        name="sgd", lr=0.025, lr_min=0.001, weight_decay=3e-4
    )
    arch_optimizer: OptimizerSpec = OptimizerSpec(
        name="adam", lr=1e-3, schedule="constant", betas=(0.5, 0.999), weight_decay=1e-3
    )
    loss: LossSpec = LossSpec(ssim_lambda=0.5, average_terms=True)
    grad_clip_norm: float | None = Field(5.0, gt=0)
    val_crop: int | None = Field(256, ge=16)  # centre-crop validation images (None: whole)
    num_workers: int = Field(0, ge=0)  # DataLoader workers


class RetrainSpec(Strict):
    epochs: int = Field(10, ge=1)
    steps_per_epoch: int = Field(100, ge=1)
    batch_size: int = Field(24, ge=1)
    optimizer: OptimizerSpec = OptimizerSpec(name="sgd", lr=0.05, lr_min=0.0, schedule="poly")
    loss: LossSpec = LossSpec(ssim_lambda=0.6, average_terms=True)
    grad_clip_value: float | None = Field(5.0, gt=0)
    scale_options: dict[str, float] = {}  # searched option x factor (HiNAS: width: 2)
    space_options: dict[str, Any] = {}  # absolute overrides of search_space.options
    noise: list[NoiseSpec] | None = None  # one retrain per entry; default: data.noise
    test_keys: list[str] | None = None  # e.g. [sigma15, sigma25]; default: the noise's levels
    top_k: int = Field(1, ge=1)  # best distinct genotypes of each arm to retrain
    self_ensemble: bool = False  # also log test/.../psnr_x8
    num_workers: int = Field(0, ge=0)


class ParamSpec(Strict):
    """One outer hyperparameter for Optuna."""

    type: Literal["int", "float", "categorical"]
    low: float | None = None
    high: float | None = None
    log: bool = False
    step: float | None = None
    choices: list[Any] | None = None

    @model_validator(mode="after")
    def _bounds_or_choices(self) -> ParamSpec:
        if self.type == "categorical":
            if not self.choices:
                raise ValueError("categorical parameter needs non-empty 'choices'")
        elif self.low is None or self.high is None or self.low > self.high:
            raise ValueError(f"{self.type} parameter needs 'low' <= 'high'")
        return self


class SchedulerSpec(Strict):
    type: Literal["asha"] = "asha"
    grace_period: int = Field(1, ge=1)  # epochs
    reduction_factor: float = Field(3, gt=1)


class TuneSpec(Strict):
    num_samples: int = Field(1, ge=1)  # Optuna trials per arm
    sampler_seed: int = 0
    metric: str = "val/score"  # reported by the search trainable every epoch
    mode: Literal["max", "min"] = "max"
    space: dict[str, ParamSpec] = {}  # dotted study key -> distribution
    max_concurrent: int = Field(2, ge=1)
    scheduler: SchedulerSpec | None = None

    @field_validator("space")
    @classmethod
    def _tunable_keys(cls, space: dict[str, ParamSpec]) -> dict[str, ParamSpec]:
        for key in space:
            if key.split(".")[0] not in TUNABLE_SECTIONS:
                raise ValueError(f"space key '{key}' must start with one of {TUNABLE_SECTIONS}")
        return space


TUNABLE_SECTIONS = ("search_space", "search", "data", "retrain")


class Resources(Strict):
    cpu: float = Field(1, gt=0)
    gpu: float = Field(0, ge=0)


class ResourcesSpec(Strict):
    search: Resources = Resources()
    retrain: Resources = Resources()


class ArmSpec(Strict):
    name: str
    set: dict[str, Any] = {}  # dotted study key -> value


class ArmsSpec(Strict):
    grid: dict[str, list[Any]] = {}  # dotted key -> values; arms = Cartesian product
    named: list[ArmSpec] = []  # extra named arms


class TrackingSpec(Strict):
    uri: str | None = None  # default: sqlite:///mlflow.db in the working directory
    experiment: str | None = None  # default: the study name


class Study(Strict):
    name: str = Field(pattern=r"^[A-Za-z0-9_.-]+$")
    description: str = ""
    seed: int = 0
    precision: Literal["fp32", "bf16", "fp16"] = "fp32"  # autocast in training (fp16: CUDA)
    data: DataSpec = DataSpec()
    search_space: SearchSpaceSpec
    search: SearchSpec = SearchSpec()
    retrain: RetrainSpec = RetrainSpec()
    tune: TuneSpec = TuneSpec()
    resources: ResourcesSpec = ResourcesSpec()
    arms: ArmsSpec = ArmsSpec()
    tracking: TrackingSpec = TrackingSpec()
    profiles: dict[str, dict[str, Any]] = {}  # name -> dotted overrides

    @model_validator(mode="before")
    @classmethod
    def _space_default_strategy(cls, data: Any) -> Any:
        """search.strategy left out (or null): the strategy the search space names."""
        from searchspaces.registry import get_space

        if not isinstance(data, dict) or not isinstance(data.get("search_space"), dict):
            return data
        search = {} if data.get("search") is None else data["search"]
        if not isinstance(search, dict) or search.get("strategy") is not None:
            return data
        try:
            strategy = get_space(str(data["search_space"].get("name"))).default_strategy
        except KeyError:  # an unknown space is reported by SearchSpaceSpec
            return data
        return {**data, "search": {**search, "strategy": strategy}}

    @model_validator(mode="after")
    def _space_fits_data(self) -> Study:
        from searchspaces.registry import get_space

        space = get_space(self.search_space.name)
        options = space.parse_options(self.search_space.options)
        try:
            space.check_data(options, self.data.patch_size)
        except ValueError as error:
            raise ValueError(f"search_space.{error}") from None
        unknown = sorted(set(self.retrain.scale_options) - set(type(options).model_fields))
        if unknown:
            raise ValueError(f"retrain.scale_options.{unknown[0]}: not an option of "
                             f"search space {self.search_space.name!r}")
        return self
