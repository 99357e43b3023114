"""The Optuna side of a tuned arm: distributions from the study file, a seeded OptunaSearch."""

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
    """A TPE-driven OptunaSearch seeded from the study (one or several objectives, the
    `start_from` points first); None when nothing is tuned."""
    if not tune_spec.space:
        return None
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    sampler = optuna.samplers.TPESampler(seed=tune_spec.sampler_seed + seed_offset)
    objectives = tune_spec.objective_list()
    metric: Any = [o.metric for o in objectives]
    mode: Any = [o.mode for o in objectives]
    if len(objectives) == 1:
        metric, mode = metric[0], mode[0]
    points = [dict(point) for point in tune_spec.start_from] or None
    return OptunaSearch(space=optuna_space(tune_spec), metric=metric, mode=mode,
                        sampler=sampler, points_to_evaluate=points)
