"""The study-file schema (docs/study-keys.md): strict, frozen pydantic models.

A study file is parsed once at the edge (`orchestrator.study.reading`) into these
models; unknown keys are errors that name their dotted path. Inside a trial
the plain-dict form is validated again with the same models.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BeforeValidator, ConfigDict, Field, field_validator, model_validator

from studyspec.armspec import ArmSpec, ArmsSpec, Baseline, BaselineSpec, Seeds, unique_seeds
from studyspec.fields import (
    DIVERGENCE,
    MAX_EPOCHS,
    MAX_LIST,
    MAX_STAGES,
    Name,
    Quality,
    Seed,
    Sigma,
    Strict,
    error_at,
    listed,
    located,
)
from studyspec.published import PublishedSpec
from studyspec.runspec import GroupSpec, Resources, ResourcesSpec, TrackingSpec
from studyspec.spacespec import SearchSpaceSpec
from studyspec.splitspec import SplitSpec
from studyspec.starts import RETRAIN_EPOCHS, Start, inheriting_spaces, start_of
from studyspec.steps import steps_or_images
from studyspec.training import BiasSpec, CostSpec, LossSpec, OptimizerSpec, ProxySpec
from studyspec.tuning import (
    DEFAULT_METRIC,
    PHASE_METRICS,
    TUNABLE_SECTIONS,
    ObjectiveSpec,
    ParamSpec,
    SchedulerSpec,
    TuneSpec,
)

__all__ = [
    "DEFAULT_METRIC", "PHASE_METRICS", "TUNABLE_SECTIONS", "ArmSpec", "ArmsSpec",
    "BaselineSpec", "BiasSpec", "DataSpec",
    "GroupSpec", "LossSpec", "NoiseSpec", "ObjectiveSpec", "OptimizerSpec", "ParamSpec",
    "Resources", "ResourcesSpec", "RetrainSpec", "SchedulerSpec", "SearchSpaceSpec",
    "SearchSpec", "Study", "TrackingSpec", "TuneSpec", "error_at",
]
Sigmas = Annotated[list[Sigma], Field(min_length=1, max_length=MAX_LIST)]
Qualities = Annotated[list[Quality], Field(min_length=1, max_length=MAX_LIST)]
Names = Annotated[list[Name], Field(min_length=1, max_length=MAX_LIST)]


class NoiseSpec(Strict):
    """Training degradation: AWGN (fixed sigma, list, or blind range) or JPEG."""

    type: Literal["awgn", "jpeg"] = "awgn"
    sigma: Sigma | Sigmas | None = None  # fixed sigma in [0, 255], or drawn from a list
    sigma_range: Annotated[tuple[Sigma, Sigma], BeforeValidator(listed)] | None = None  # blind
    quality: Quality | Qualities | None = None  # JPEG quality 1-100 (drawn from a list)

    @model_validator(mode="after")
    def _one_level_source(self) -> NoiseSpec:
        given = [k for k in ("sigma", "sigma_range", "quality") if getattr(self, k) is not None]
        if self.type == "awgn" and given not in (["sigma"], ["sigma_range"]):
            raise ValueError("awgn noise needs exactly one of 'sigma' or 'sigma_range'")
        if self.type == "jpeg" and given != ["quality"]:
            raise ValueError("jpeg degradation needs 'quality' (and no sigma)")
        if self.sigma_range is not None and self.sigma_range[0] > self.sigma_range[1]:
            raise error_at("NoiseSpec", "sigma_range", f"expected [low, high] with low <= high, "
                           f"got {list(self.sigma_range)}")
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


Scale = Annotated[float, Field(gt=0, le=10)]  # a rescale factor


class DataSpec(SplitSpec):  # val_fraction, split, group_pattern: studyspec.splitspec
    train: Name = "embedded"  # dataset name (train400, embedded, ...) or a folder path
    test: Names = ["embedded"]  # test sets (at least one), evaluated after retraining
    # folder holding named datasets; --data-root overrides; None: ./data, else ../shared/datasets
    root: Name | None = None
    color: bool = False  # RGB instead of luminance
    patch_size: int = Field(64, ge=8, le=1024)
    augment: bool = True  # k*90 rotation + flip
    # random bicubic rescale (p=0.5) by a factor in [low, high]; true: [0.8, 1.2], the HiNAS
    # code's RandomRescaleCrop (search and retraining, data/datasets/transforms.py)
    rescale: bool | Annotated[tuple[Scale, Scale], BeforeValidator(listed)] = False
    noise: NoiseSpec = NoiseSpec(sigma=25)
    # where training patches are made: "device", by torch on the trial's device from images
    # held there (trainables.data.device); "numpy", the reference pipeline on the CPU (the
    # only one that uses search.num_workers / retrain.num_workers DataLoader workers)
    pipeline: Literal["device", "numpy"] = "device"
    max_train_images: int | None = Field(None, ge=3, le=10**7)  # the first N images (smoke)

    @model_validator(mode="after")
    def _rescale_in_order(self) -> DataSpec:
        if isinstance(self.rescale, tuple) and self.rescale[0] > self.rescale[1]:
            raise error_at("DataSpec", "rescale", f"expected [low, high] with low <= high, "
                           f"got {list(self.rescale)}")
        return self


class RSWSSpec(Strict):
    """Random search with weight sharing (HiNAS journal Table 1, N = 30; trainables.loops.rsws)."""

    samples: int = Field(30, ge=1, le=10_000)  # N architectures scored on Validation-V


class SearchSpec(Strict):
    """The differentiable inner loop (`trainables/loops/search.py`)."""

    # None: the space's default_strategy; rsws: one uniformly drawn architecture per step
    strategy: Literal["bilevel", "joint", "rsws"] | None = None
    rsws: RSWSSpec = RSWSSpec()  # strategy rsws only
    epochs: int = Field(100, ge=1, le=MAX_EPOCHS)
    # "steps": steps_per_epoch steps; "images": one random crop of every Train-W image per
    # epoch, ceil(images / batch_size) steps (HiNAS code: build_dataset.py, searcher.py)
    epoch: Literal["steps", "images"] = "steps"
    steps_per_epoch: int | None = Field(None, ge=1, le=10**7)  # None: 100, or from images
    batch_size: int = Field(8, ge=1, le=4096)
    # weights only before architecture updates; below `epochs` when the space searches
    warmup_epochs: int = Field(20, ge=0, le=MAX_EPOCHS)
    validate_from_epoch: int = Field(0, ge=0, le=MAX_EPOCHS)  # best-on-V from here, < epochs
    patience: int | None = Field(None, ge=1, le=MAX_EPOCHS)  # evaluations without improvement
    # validate on V every this many steps (a divisor of steps_per_epoch); None: each epoch
    eval_every: int | None = Field(None, ge=1, le=10**7)
    select_by: Literal["score", "psnr"] = "score"  # best epoch / patience: val/score or val/psnr
    weight_optimizer: OptimizerSpec = OptimizerSpec(
        name="sgd", lr=0.025, lr_min=0.001, weight_decay=3e-4
    )
    arch_optimizer: OptimizerSpec = OptimizerSpec(
        name="adam", lr=1e-3, schedule="constant", betas=(0.5, 0.999), weight_decay=1e-3
    )
    loss: LossSpec = LossSpec(ssim_lambda=0.5, average_terms=True)
    grad_clip_norm: float | None = Field(5.0, gt=0, le=1e6)
    divergence_factor: float | None = Field(DIVERGENCE, gt=1, le=1e12)  # None: never fail
    val_crop: int | None = Field(256, ge=16, le=8192)  # centre-crop validation images (None: whole)
    # test sets the supernet is scored on every epoch (search/test/<set>/<level>/psnr, Fig. 3)
    monitor: Names | None = None
    monitor_crop: int | None = Field(None, ge=16, le=8192)  # centre-crop them (None: whole)
    num_workers: int = Field(0, ge=0, le=64)  # DataLoader workers

    _steps = model_validator(mode="before")(steps_or_images)

    @model_validator(mode="after")
    def _validates_within_epochs(self) -> SearchSpec:
        if self.validate_from_epoch >= self.epochs:
            raise error_at("SearchSpec", "validate_from_epoch", f"{self.validate_from_epoch} is "
                           f"not an epoch of search.epochs {self.epochs} (0-based)")
        if self.eval_every is not None and self.epoch == "images":
            raise error_at("SearchSpec", "eval_every", "search.epoch: images has no step count "
                           "before the data is split; validate once per epoch (drop eval_every)")
        if self.eval_every is not None and self.steps_per_epoch % self.eval_every:
            raise error_at("SearchSpec", "eval_every", f"{self.eval_every} does not divide "
                           f"search.steps_per_epoch {self.steps_per_epoch}")
        return self


TEST_KEY = r"^(sigma(25[0-5]|2[0-4][0-9]|1?[0-9]?[0-9])(\.[0-9]+)?|q(100|[1-9][0-9]?))$"


class RetrainSpec(Strict):
    model_config = ConfigDict(serialize_by_alias=True)  # `from` in dumps, as in study files
    # the derived network's start: "inherit" the search's best supernet weights (the
    # single-shot procedure of Superkernel NAS) or "scratch"; None: the space's default
    # (inherit where the space can, SearchSpace.can_inherit)
    from_: Start | None = Field(None, alias="from")
    # left out: 10, or 0 when the network inherits (tested as distilled, Sec. 4.5.5)
    epochs: int = Field(RETRAIN_EPOCHS, ge=0, le=MAX_EPOCHS)
    steps_per_epoch: int = Field(100, ge=1, le=10**7)
    batch_size: int = Field(24, ge=1, le=4096)
    optimizer: OptimizerSpec = OptimizerSpec(name="sgd", lr=0.05, lr_min=0.0, schedule="poly")
    loss: LossSpec = LossSpec(ssim_lambda=0.6, average_terms=True)
    grad_clip_value: float | None = Field(5.0, gt=0, le=1e6)
    # fail when train/loss's running mean exceeds this x its running minimum (None: never)
    divergence_factor: float | None = Field(DIVERGENCE, gt=1, le=1e12)
    # the network tested: the last epoch's, or the best on V (val/score) of the epochs
    # ending after 3/4 of the steps (HiNAS code: engine/trainer.py, tools/dn_eval.py)
    select: Literal["last", "best_v_last_quarter"] = "last"
    # searched option x factor (HiNAS: width: 2), numeric options only
    scale_options: dict[str, Annotated[float, Field(gt=0, le=1000)]] = {}
    space_options: dict[str, Any] = {}  # absolute overrides of search_space.options
    # one retrain per entry; default: data.noise
    noise: Annotated[list[NoiseSpec], Field(min_length=1, max_length=MAX_LIST)] | None = None
    # e.g. [sigma15, q10] (sigma 0-255, quality 1-100); default: the noise's levels
    test_keys: Annotated[list[Annotated[str, Field(pattern=TEST_KEY)]],
                         Field(min_length=1, max_length=MAX_LIST)] | None = None
    self_ensemble: bool = False  # also log test/.../psnr_x8
    cost: CostSpec = CostSpec()  # the input and repeats of the cost/ metrics
    # retrain the searched genotype at each of these unfolded stage counts T (MoD-NAS
    # Table 2: one search, T = 1, 3, 6); None: at the searched T
    stages: Annotated[list[Annotated[int, Field(ge=1, le=MAX_STAGES)]],
                      Field(min_length=1, max_length=MAX_LIST)] | None = None
    num_workers: int = Field(0, ge=0, le=64)
    # tuned arms only: a short retraining of every candidate, the full one for the best
    proxy: ProxySpec | None = None


class Study(Strict):
    name: str = Field(pattern=r"^[A-Za-z0-9_.-]+$")
    description: str = ""
    seed: Seed = 0  # the data split and Optuna samplers; the only seed unless `seeds` is set
    seeds: Seeds | None = None  # every arm is searched and retrained once per seed
    precision: Literal["fp32", "bf16", "fp16"] = "fp32"  # autocast in training (fp16: CUDA)
    data: DataSpec = DataSpec()
    search_space: SearchSpaceSpec
    search: SearchSpec = SearchSpec()
    retrain: RetrainSpec = RetrainSpec()
    tune: TuneSpec = TuneSpec()
    resources: ResourcesSpec = ResourcesSpec()
    arms: ArmsSpec = ArmsSpec()
    # reference networks as extra arms (a row in every table): dncnn | {name, weights, set}
    baselines: Annotated[list[Baseline], Field(max_length=MAX_LIST)] = []
    groups: dict[str, GroupSpec] = {}  # results tables, in this order
    # the papers' values shown beside the measured ones (studyspec.published)
    published: Annotated[list[PublishedSpec],
                         Field(min_length=1, max_length=MAX_LIST)] | None = None
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
                raise error_at("Study", key, f"unknown group {group!r} (known: {known})")
        for index, entry in enumerate(self.published or ()):
            if entry.group is not None and entry.group not in self.groups:
                known = ", ".join(self.groups) or "none declared under groups"
                raise error_at("Study", f"published.{index}.group",
                               f"unknown group {entry.group!r} (known: {known})")
        return self

    @model_validator(mode="after")
    def _baselines_fit(self) -> Study:
        taken = {name for name, _ in self.arms.grid_points()} | {a.name for a in self.arms.named}
        seen: set[str] = set()
        for index, baseline in enumerate(self.baselines):
            name = baseline.arm_name
            if name in seen or name in taken:
                where = "is listed twice" if name in seen else "is also the name of an arm"
                raise error_at("Study", f"baselines.{index}", f"baseline arm '{name}' {where}")
            seen.add(name)
            mismatch = self.published_mismatch()
            if baseline.weights is not None and mismatch:
                raise error_at("Study", f"baselines.{index}.weights", "published weights are "
                               f"evaluated at grey AWGN sigma 25 only, but {mismatch}")
        return self

    def published_mismatch(self) -> str:
        """Why the study's evaluation is not grey AWGN sigma 25 ("" when it is)."""
        if self.data.color:
            return "data.color is true"
        for noise in self.retrain.noise or [self.data.noise]:
            keys = noise.test_keys() if noise.type == "awgn" else [noise.type]
            if keys != ["sigma25"]:
                return f"the study retrains at {', '.join(keys) or 'a blind sigma_range'}"
        if self.retrain.test_keys not in (None, ["sigma25"]):
            return f"retrain.test_keys is {self.retrain.test_keys}"
        return ""

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

    @model_validator(mode="before")
    @classmethod
    def _inherited_networks_test_only(cls, data: Any) -> Any:
        """retrain.epochs left out: 0 when the derived network inherits (single-shot)."""
        retrain = data.get("retrain") if isinstance(data, dict) else None
        if retrain is None:
            retrain = {}
        if not isinstance(retrain, dict) or "epochs" in retrain:
            return data
        if start_of(data.get("search_space"), retrain.get("from")) != "inherit":
            return data
        return {**data, "retrain": {**retrain, "epochs": 0}}

    @model_validator(mode="after")
    def _stages_possible(self) -> Study:
        stages = self.retrain.stages
        if stages is not None:
            if len(set(stages)) != len(stages):
                raise error_at("Study", "retrain.stages", f"{stages} lists a stage count twice")
            space = self.space()
            try:
                space.check_stages(space.parse_options(self.search_space.resolved_options()),
                                   stages)
            except ValueError as error:
                raise error_at("Study", "retrain.stages", str(error)) from None
        return self

    @model_validator(mode="after")
    def _start_possible(self) -> Study:
        if self.retrain_start() == "inherit" and not self.space().can_inherit:
            raise error_at("Study", "retrain.from", f"inherit: search space "
                           f"{self.search_space.name!r} cannot carry its supernet's weights "
                           f"into the derived network (spaces that can: {inheriting_spaces()})")
        return self

    def retrain_start(self) -> str:
        """`retrain.from`, or the space's default: "inherit" where it can, else "scratch"."""
        return self.retrain.from_ or ("inherit" if self.space().can_inherit else "scratch")

    @model_validator(mode="after")
    def _space_fits_data(self) -> Study:
        """Patches the space's networks can halve (U-net levels); the retrained network's
        options (scaled, then overridden) valid for the space."""
        space = self.space()
        try:
            space.check_data(space.parse_options(self.search_space.options), self.data.patch_size)
        except ValueError as error:
            key, _, message = str(error).partition(": ")
            raise error_at("Study", f"search_space.{key}", message) from None
        self.retrain_options()
        return self

    @model_validator(mode="after")
    def _epochs_fit(self) -> Study:
        search = self.search
        rsws = search.strategy == "rsws"  # no architecture updates to warm up for
        if self.space().searchable and not rsws and search.warmup_epochs >= search.epochs:
            raise error_at("Study", "search.warmup_epochs", f"{search.warmup_epochs} warm-up "
                           f"epochs leave none of search.epochs {search.epochs} to update the "
                           "architecture in")
        scheduler = self.tune.scheduler
        if scheduler is not None and scheduler.grace_period > search.epochs:
            raise error_at("Study", "tune.scheduler.grace_period", f"{scheduler.grace_period} "
                           f"is beyond search.epochs {search.epochs}")
        return self

    def space(self):
        from searchspaces.registry import get_space

        return get_space(self.search_space.name)

    def retrain_options(self) -> dict[str, Any]:
        """The search space options the retrained network is built with: the searched ones
        (a trial's Optuna picks included) times `retrain.scale_options`, then
        `retrain.space_options`; validated by the space."""
        from pydantic import ValidationError

        options = self.search_space.resolved_options()
        for key, factor in self.retrain.scale_options.items():
            value = options.get(key)
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise error_at("Study", f"retrain.scale_options.{key}", "not a numeric option "
                               f"of search space {self.search_space.name!r}")
            options[key] = round(value * factor) if isinstance(value, int) else value * factor
        options = {**options, **self.retrain.space_options}
        try:
            return self.space().parse_options(options).model_dump(mode="json")
        except ValidationError as error:
            key, message, _ = located(error)
            head = key.split(".")[0]
            section = "scale_options" if head in self.retrain.scale_options and \
                head not in self.retrain.space_options else "space_options"
            where = f"retrain.{section}.{key}" if head else f"retrain.{section}"
            raise error_at("Study", where, message) from None

