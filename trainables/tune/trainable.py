"""The one Ray Tune trainable of a study: a trial's config says its arm, seed and phase.

The study searcher (`orchestrator.run.searcher`) emits search and retrain
trials of every arm into one Tune experiment; this function resolves the arm's
study with the trial's seed and Optuna values and runs the phase's adapter.
`loops` is replaceable so that the scheduling benchmark can time the
orchestration with stand-in loops of known length.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

import torch

from studyspec.dotted import with_overrides
from trainables.data import StageData
from trainables.loops import run_retrain, run_search
from trainables.tracking import data_manifest
from trainables.tune.retrain import retrain_trial
from trainables.tune.search import search_trial
from trainables.tune.session import TrialContext


@dataclass(frozen=True)
class Loops:
    search: Callable = run_search  # (study, SearchData, report, runtime, state) -> Genotype
    retrain: Callable = run_retrain  # (study, genotype, noise, RetrainData, report, runtime,
    #                                    state) -> (model, metrics)


def study_trainable(config: dict[str, Any], *, studies: dict[str, dict[str, Any]],
                    data: dict[str, StageData], context: TrialContext,
                    loops: Loops = Loops()) -> None:
    arm = config["arm"]
    study = with_overrides(studies[arm], {**config["tuned"], **config.get("overrides", {}),
                                          "seed": config["seed"]})  # overrides: a proxy's
    context = replace(context, data_manifest=data_manifest(data[arm]),
                      data_seed=studies[arm]["seed"])
    try:
        if config["phase"] == "search":
            search_trial(config, study, data[arm].search, context, loops.search)
        else:
            retrain_trial(config, study, data[arm].retrain, context, loops.retrain)
    finally:  # Tune may reuse this worker for the next trial: leave no GPU cache behind
        if torch.cuda.is_available():
            torch.cuda.empty_cache()
