"""The `tune:` section of a study: Optuna's distributions, objectives and ASHA (docs/study-keys.md).

Every distribution is one Optuna accepts as it stands (finite bounds, integral
bounds and steps for `int`, a positive `low` on a log scale, no step with `log`);
`start_from` points lie inside their distributions.
"""

from __future__ import annotations

import json
from typing import Any, Literal

from pydantic import Field, field_validator, model_validator

from studyspec.fields import MAX_EPOCHS, MAX_LIST, Seed, Strict, error_at

# Metrics each phase reports to Tune (the final report of a trial is what Optuna sees).
PHASE_METRICS = {
    "supernet": ("val/score", "val/psnr", "val/ssim", "train/loss", "best/score",
                 "search/alpha_entropy"),
    "retrained": ("val/score", "val/psnr", "val/ssim", "train/loss", "cost/params",
                  "cost/gflops_per_mp", "cost/latency_ms_per_mp", "cost/peak_mem_mib"),
}
DEFAULT_METRIC = {"supernet": "val/score", "retrained": "val/psnr"}
TUNABLE_SECTIONS = ("search_space", "search", "data", "retrain")


class ParamSpec(Strict):
    """One outer hyperparameter for Optuna."""

    type: Literal["int", "float", "categorical"]
    low: float | None = None
    high: float | None = None
    log: bool = False
    step: float | None = Field(None, gt=0)
    choices: list[Any] | None = Field(None, min_length=1, max_length=MAX_LIST)

    @model_validator(mode="after")
    def _bounds_or_choices(self) -> ParamSpec:
        if self.type == "categorical":
            return self._categorical()
        given = [key for key in ("choices",) if getattr(self, key) is not None]
        if given:
            raise error_at("ParamSpec", given[0], f"not a key of an {self.type} parameter")
        if self.low is None or self.high is None or self.low > self.high:
            raise ValueError(f"{self.type} parameter needs 'low' <= 'high'")
        if self.type == "int":
            for key in ("low", "high", "step"):
                value = getattr(self, key)
                if value is not None and not float(value).is_integer():
                    raise error_at("ParamSpec", key, f"{value} is not a whole number")
        if self.log and self.low <= 0:
            raise error_at("ParamSpec", "low", "a log-scale parameter needs low > 0")
        if self.log and self.step is not None:
            raise error_at("ParamSpec", "step", "Optuna takes a step or a log scale, not both")
        if self.step is not None and self.step > self.high - self.low:
            raise error_at("ParamSpec", "step", f"{self.step:g} is wider than high - low")
        return self

    def _categorical(self) -> ParamSpec:
        given = [key for key in ("low", "high", "step") if getattr(self, key) is not None]
        if given or self.log:
            raise error_at("ParamSpec", (given or ["log"])[0],
                           "not a key of a categorical parameter")
        if not self.choices:
            raise ValueError("categorical parameter needs non-empty 'choices'")
        seen = [json.dumps(choice, sort_keys=True) for choice in self.choices]
        for index, text in enumerate(seen):
            if text in seen[:index]:
                raise error_at("ParamSpec", f"choices.{index}", f"{text} is listed twice")
        return self

    def contains(self, value: Any) -> bool:
        """Whether Optuna could propose `value` (a `start_from` point)."""
        if self.type == "categorical":
            return any(json.dumps(value, sort_keys=True) == json.dumps(c, sort_keys=True)
                       for c in self.choices)
        number = (int,) if self.type == "int" else (int, float)
        return (isinstance(value, number) and not isinstance(value, bool)
                and self.low <= value <= self.high)


class SchedulerSpec(Strict):
    type: Literal["asha"] = "asha"
    grace_period: int = Field(1, ge=1, le=MAX_EPOCHS)  # epochs (at most search.epochs)
    reduction_factor: float = Field(3, gt=1, le=100)


class ObjectiveSpec(Strict):
    metric: str
    mode: Literal["max", "min"] = "max"


class TuneSpec(Strict):
    """Optuna over the outer hyperparameters, one Optuna study per tuned arm.

    `objective: retrained` (default) scores a sample by its retrained networks on
    Validation-V (the mean over its seeds and noise levels); `supernet` by the
    search trial's last report, a cheaper proxy (its val/ metrics those of the epoch
    whose genotype is retrained, `orchestrator.run.ranking`). `objectives` (two or three)
    makes the search multi-objective; `start_from` lists points Optuna evaluates
    first (e.g. the paper's own setting).
    """

    num_samples: int = Field(1, ge=1, le=100_000)  # Optuna samples per tuned arm
    sampler_seed: Seed = 0
    objective: Literal["retrained", "supernet"] = "retrained"
    metric: str | None = None  # default: val/psnr (retrained) or val/score (supernet)
    mode: Literal["max", "min"] = "max"
    objectives: list[ObjectiveSpec] | None = None
    start_from: list[dict[str, Any]] = Field([], max_length=MAX_LIST)
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
            if objective.metric in [o.metric for o in self.objectives[:index]]:
                raise error_at("TuneSpec", f"objectives.{index}.metric",
                               f"{objective.metric!r} is listed twice")
        if self.metric is not None and self.metric not in known:
            raise error_at("TuneSpec", "metric", f"{self.metric!r} is not reported by the "
                           f"{self.objective} phase (one of {', '.join(known)})")
        if self.objectives is not None and not 2 <= len(self.objectives) <= 3:
            raise error_at("TuneSpec", "objectives",
                           "list two or three metrics (or use tune.metric)")
        if self.objectives and self.scheduler is not None:
            raise error_at("TuneSpec", "scheduler", "Ray Tune's ASHA scheduler takes a single "
                           "metric; drop it for a multi-objective study")
        self._points_inside()
        return self

    def _points_inside(self) -> None:
        for index, point in enumerate(self.start_from):
            unknown = sorted(set(point) - set(self.space))
            if unknown:
                raise error_at("TuneSpec", f"start_from.{index}.{unknown[0]}",
                               "not a key of tune.space")
            outside = [key for key, value in point.items() if not self.space[key].contains(value)]
            if outside:
                raise error_at("TuneSpec", f"start_from.{index}.{outside[0]}",
                               f"{point[outside[0]]!r} is outside tune.space.{outside[0]}")

    def objective_list(self) -> list[ObjectiveSpec]:
        """The objectives Optuna optimises (one unless `objectives` lists several)."""
        if self.objectives:
            return list(self.objectives)
        return [ObjectiveSpec(metric=self.metric or DEFAULT_METRIC[self.objective],
                              mode=self.mode)]
