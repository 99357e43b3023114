"""The Optuna side of a stage: distributions from the study file, a seeded OptunaSearch."""

from __future__ import annotations

from typing import Any

import optuna
from optuna.distributions import (
    BaseDistribution,
    CategoricalDistribution,
    FloatDistribution,
    IntDistribution,
)
from ray.tune.search.optuna import OptunaSearch

from studyspec.schema import ParamSpec, TuneSpec


def distribution(spec: ParamSpec) -> BaseDistribution:
    if spec.type == "categorical":
        return CategoricalDistribution(spec.choices)
    if spec.type == "int":
        step = int(spec.step) if spec.step is not None else 1
        return IntDistribution(int(spec.low), int(spec.high), log=spec.log, step=step)
    return FloatDistribution(spec.low, spec.high, log=spec.log, step=spec.step)


def optuna_space(tune_spec: TuneSpec) -> dict[str, BaseDistribution]:
    return {key: distribution(spec) for key, spec in tune_spec.space.items()}


def make_searcher(tune_spec: TuneSpec, seed_offset: int = 0) -> OptunaSearch | None:
    """A TPE-driven OptunaSearch seeded from the study; None when nothing is tuned."""
    if not tune_spec.space:
        return None
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    sampler = optuna.samplers.TPESampler(seed=tune_spec.sampler_seed + seed_offset)
    return OptunaSearch(space=optuna_space(tune_spec), metric=tune_spec.metric,
                        mode=tune_spec.mode, sampler=sampler)


def seed_grid(base_seed: int, count: int) -> list[dict[str, Any]]:
    """Without a tuned space, `num_samples` repeats differ only by their seed."""
    return [{"seed": base_seed + index} for index in range(count)]
