"""The study-file schema (SPEC 5.1): strict, frozen pydantic models.

A study file is parsed once at the edge (`orchestrator.studyfile`) into these
models; unknown keys are errors that name their dotted path. Inside a trial
the plain-dict form is validated again with the same models.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator
from pydantic_core import InitErrorDetails, PydanticCustomError


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
    patch_size: int = Field(64, ge=8, le=1024)
    augment: bool = True  # k*90 rotation + flip
    rescale: bool = False  # random bicubic rescale 0.8-1.2 (p=0.5)
    noise: NoiseSpec = NoiseSpec(sigma=25)
    val_fraction: float = Field(0.02, ge=0, lt=1)  # Validation-V share of the training images
    max_train_images: int | None = Field(None, ge=3, le=10**7)  # the first N images (smoke)


class OptimizerSpec(Strict):
    name: Literal["sgd", "adam"] = "adam"
    lr: float = Field(1e-3, gt=0, le=1000)
    lr_min: float = Field(0.0, ge=0, le=1000)  # end of the cosine / poly schedule
    schedule: Literal["cosine", "poly", "constant"] = "cosine"
    momentum: float = Field(0.9, ge=0, lt=1)  # SGD only
    betas: tuple[float, float] = (0.9, 0.999)  # Adam only
    weight_decay: float = Field(0.0, ge=0, le=1)


class LossSpec(Strict):
    """HiNAS Eq. 7: MSE + lambda * log10(1 / SSIM)."""

    ssim_lambda: float = Field(0.0, ge=0, le=100)
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
    epochs: int = Field(100, ge=1, le=100_000)
    steps_per_epoch: int = Field(100, ge=1, le=10**7)
    batch_size: int = Field(8, ge=1, le=4096)
    warmup_epochs: int = Field(20, ge=0, le=100_000)  # weights only before architecture updates
    validate_from_epoch: int = Field(0, ge=0, le=100_000)  # best-on-V from this epoch, 0-based
    patience: int | None = Field(None, ge=1, le=100_000)  # evaluations without improvement
    select_by: Literal["score", "psnr"] = "score"  # best epoch / patience: val/score or val/psnr
    weight_optimizer: OptimizerSpec = OptimizerSpec(
        name="sgd", lr=0.025, lr_min=0.001, weight_decay=3e-4
    )
    arch_optimizer: OptimizerSpec = OptimizerSpec(
        name="adam", lr=1e-3, schedule="constant", betas=(0.5, 0.999), weight_decay=1e-3
    )
    loss: LossSpec = LossSpec(ssim_lambda=0.5, average_terms=True)
    grad_clip_norm: float | None = Field(5.0, gt=0, le=1e6)
    val_crop: int | None = Field(256, ge=16, le=8192)  # centre-crop validation images (None: whole)
    num_workers: int = Field(0, ge=0, le=64)  # DataLoader workers


class RetrainSpec(Strict):
    epochs: int = Field(10, ge=1, le=100_000)
    steps_per_epoch: int = Field(100, ge=1, le=10**7)
    batch_size: int = Field(24, ge=1, le=4096)
    optimizer: OptimizerSpec = OptimizerSpec(name="sgd", lr=0.05, lr_min=0.0, schedule="poly")
    loss: LossSpec = LossSpec(ssim_lambda=0.6, average_terms=True)
    grad_clip_value: float | None = Field(5.0, gt=0, le=1e6)
    scale_options: dict[str, float] = {}  # searched option x factor (HiNAS: width: 2)
    space_options: dict[str, Any] = {}  # absolute overrides of search_space.options
    noise: list[NoiseSpec] | None = None  # one retrain per entry; default: data.noise
    test_keys: list[str] | None = None  # e.g. [sigma15, sigma25]; default: the noise's levels
    self_ensemble: bool = False  # also log test/.../psnr_x8
    num_workers: int = Field(0, ge=0, le=64)


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
    grace_period: int = Field(1, ge=1, le=100_000)  # epochs
    reduction_factor: float = Field(3, gt=1, le=100)


# Metrics each phase reports to Tune (the final report of a trial is what Optuna sees).
PHASE_METRICS = {
    "supernet": ("val/score", "val/psnr", "val/ssim", "train/loss", "best/score",
                 "search/alpha_entropy"),
    "retrained": ("val/score", "val/psnr", "val/ssim", "train/loss", "cost/params",
                  "cost/gflops_per_mp", "cost/latency_ms_per_mp", "cost/peak_mem_mib"),
}
DEFAULT_METRIC = {"supernet": "val/score", "retrained": "val/psnr"}


def error_at(title: str, key: str, message: str) -> ValidationError:
    """An error of a check across fields, located at its own dotted `key` inside the model,
    so that a study file's message names the whole path (`tune.metric`, not `tune`)."""
    kind = PydanticCustomError("value_error", "{message}", {"message": message})
    return ValidationError.from_exception_data(
        title, [InitErrorDetails(type=kind, loc=tuple(key.split(".")), input=None)])


class ObjectiveSpec(Strict):
    metric: str
    mode: Literal["max", "min"] = "max"


class TuneSpec(Strict):
    """Optuna over the outer hyperparameters, one Optuna study per tuned arm.

    `objective: retrained` (default) scores a sample by its retrained networks on
    Validation-V (the mean over its seeds and noise levels); `supernet` by the
    search trial's last report, a cheaper proxy. `objectives` (two or three)
    makes the search multi-objective; `start_from` lists points Optuna evaluates
    first (e.g. the paper's own setting).
    """

    num_samples: int = Field(1, ge=1, le=100_000)  # Optuna samples per tuned arm
    sampler_seed: int = 0
    objective: Literal["retrained", "supernet"] = "retrained"
    metric: str | None = None  # default: val/psnr (retrained) or val/score (supernet)
    mode: Literal["max", "min"] = "max"
    objectives: list[ObjectiveSpec] | None = None
    start_from: list[dict[str, Any]] = []
    space: dict[str, ParamSpec] = {}  # dotted study key -> distribution
    max_concurrent: int = Field(2, ge=1, le=100_000)  # trials in flight over the whole study
    # restarts of a trial whose worker or node was lost (from its last checkpoint); a trial
    # that raised (divergence, bad config) is not retried: its run records the reason
    max_failures: int = Field(2, ge=0, le=100)
    scheduler: SchedulerSpec | None = None

    @field_validator("space")
    @classmethod
    def _tunable_keys(cls, space: dict[str, ParamSpec]) -> dict[str, ParamSpec]:
        for key in space:
            if key.split(".")[0] not in TUNABLE_SECTIONS:
                raise ValueError(f"space key '{key}' must start with one of {TUNABLE_SECTIONS}")
        return space

    @model_validator(mode="after")
    def _objectives_known(self) -> TuneSpec:
        known = PHASE_METRICS[self.objective]
        for index, objective in enumerate(self.objectives or []):
            if objective.metric not in known:
                raise error_at("TuneSpec", f"objectives.{index}.metric",
                               f"{objective.metric!r} is not reported by the {self.objective} "
                               f"phase (one of {', '.join(known)})")
        if self.metric is not None and self.metric not in known:
            raise error_at("TuneSpec", "metric", f"{self.metric!r} is not reported by the "
                           f"{self.objective} phase (one of {', '.join(known)})")
        if self.objectives is not None and not 2 <= len(self.objectives) <= 3:
            raise error_at("TuneSpec", "objectives",
                           "list two or three metrics (or use tune.metric)")
        if self.objectives and self.scheduler is not None:
            raise error_at("TuneSpec", "scheduler", "Ray Tune's ASHA scheduler takes a single "
                           "metric; drop it for a multi-objective study")
        for index, point in enumerate(self.start_from):
            unknown = sorted(set(point) - set(self.space))
            if unknown:
                raise error_at("TuneSpec", f"start_from.{index}.{unknown[0]}",
                               "not a key of tune.space")
        return self

    def objective_list(self) -> list[ObjectiveSpec]:
        """The objectives Optuna optimises (one unless `objectives` lists several)."""
        if self.objectives:
            return list(self.objectives)
        return [ObjectiveSpec(metric=self.metric or DEFAULT_METRIC[self.objective],
                              mode=self.mode)]


TUNABLE_SECTIONS = ("search_space", "search", "data", "retrain")


class Resources(Strict):
    cpu: float = Field(1, gt=0, le=4096)
    gpu: float = Field(0, ge=0, le=256)


class ResourcesSpec(Strict):
    search: Resources = Resources()
    retrain: Resources = Resources()


ARM_NAME = r"^[A-Za-z0-9_][A-Za-z0-9_.=+-]*$"  # no separators: names become folders and tags


def unique_seeds(seeds: list[int] | None) -> list[int] | None:
    if seeds is not None and not seeds:
        raise ValueError("list at least one seed")
    if seeds is not None and len(set(seeds)) != len(seeds):
        raise ValueError(f"seeds repeat: {seeds}")
    return seeds


class ArmSpec(Strict):
    """A named arm: study overrides, and optionally its own seeds, a table group, a
    genotype to retrain without searching (a path or runs:/<id>/genotype.json), or
    no retraining (search curves only)."""

    name: str = Field(pattern=ARM_NAME)
    group: str | None = None  # a key of the study's `groups`
    set: dict[str, Any] = {}  # dotted study key -> value
    seeds: list[int] | None = None  # default: the study's seeds
    genotype: str | None = None
    retrain: bool = True

    _seeds = field_validator("seeds")(unique_seeds)

    @model_validator(mode="after")
    def _retrains_a_given_genotype(self) -> ArmSpec:
        if self.genotype is not None and not self.retrain:
            raise ValueError("an arm with a genotype only retrains it: drop retrain: false")
        return self


class ArmsSpec(Strict):
    grid: dict[str, list[Any]] = {}  # dotted key -> values; arms = Cartesian product
    group: str | None = None  # the table group of the grid's arms
    named: list[ArmSpec] = []  # extra named arms


class GroupSpec(Strict):
    """One results table (e.g. a paper's ablation table); arms name it with `group:`."""

    title: str = ""


class TrackingSpec(Strict):
    uri: str | None = None  # default: sqlite:///mlflow.db in the working directory
    experiment: str | None = None  # default: the study name


class Study(Strict):
    name: str = Field(pattern=r"^[A-Za-z0-9_.-]+$")
    description: str = ""
    seed: int = 0  # the data split and Optuna samplers; the only seed unless `seeds` is set
    seeds: list[int] | None = None  # every arm is searched and retrained once per seed
    precision: Literal["fp32", "bf16", "fp16"] = "fp32"  # autocast in training (fp16: CUDA)
    data: DataSpec = DataSpec()
    search_space: SearchSpaceSpec
    search: SearchSpec = SearchSpec()
    retrain: RetrainSpec = RetrainSpec()
    tune: TuneSpec = TuneSpec()
    resources: ResourcesSpec = ResourcesSpec()
    arms: ArmsSpec = ArmsSpec()
    groups: dict[str, GroupSpec] = {}  # results tables, in this order
    tracking: TrackingSpec = TrackingSpec()
    profiles: dict[str, dict[str, Any]] = {}  # name -> dotted overrides

    _seeds = field_validator("seeds")(unique_seeds)

    def seed_list(self) -> list[int]:
        return list(self.seeds) if self.seeds is not None else [self.seed]

    @model_validator(mode="after")
    def _groups_declared(self) -> Study:
        named = [(f"arms.named.{i}.group", arm.group) for i, arm in enumerate(self.arms.named)]
        for key, group in [("arms.group", self.arms.group), *named]:
            if group is not None and group not in self.groups:
                known = ", ".join(self.groups) or "none declared under groups"
                raise ValueError(f"{key}: unknown group {group!r} (known: {known})")
        return self

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
