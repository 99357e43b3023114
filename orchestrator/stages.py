"""The two Ray Tune stages of an arm: search (Optuna over outer hyperparameters) and retrain.

Each stage is one `Tuner` whose experiment folder lives under the storage
directory, so an interrupted study resumes with `Tuner.restore`.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ray import tune
from ray.tune.schedulers import ASHAScheduler

from orchestrator.optuna_space import make_searcher, seed_grid
from orchestrator.progress import ProgressLines
from searchspaces.genotype import Genotype
from studyspec.schema import Resources, Study
from trainables.retrain_loop import RetrainData
from trainables.search_loop import SearchData
from trainables.tune_retrain import retrain_trainable
from trainables.tune_search import search_trainable
from trainables.tune_session import TrialContext


@dataclass(frozen=True)
class Candidate:
    """A searched architecture chosen for retraining."""

    genotype: Genotype
    score: float
    search_run_id: str
    tuned: dict  # the search trial's Optuna picks (dotted keys), applied to the retrain too


def wrap(trainable: Callable, resources: Resources, **fixed: Any):
    """Fixed data through the object store (with_parameters), per-trial CPU/GPU shares."""
    with_data = tune.with_parameters(trainable, **fixed)
    return tune.with_resources(with_data, {"cpu": resources.cpu, "gpu": resources.gpu})


def run_config(name: str, storage: Path, verbose: int) -> tune.RunConfig:
    """verbose 0: silent; 1: our one-line progress; 2: Tune's own status tables too."""
    return tune.RunConfig(
        name=name,
        storage_path=str(storage),
        checkpoint_config=tune.CheckpointConfig(num_to_keep=2),
        verbose=0 if verbose < 2 else 1,
        callbacks=[ProgressLines(name)] if verbose else [],
    )


def fit(trainable, name: str, storage: Path, resume: bool, make_tuner: Callable[[], tune.Tuner]):
    """Fit a fresh Tuner, or restore the stage's experiment when resuming."""
    path = storage / name
    if resume and tune.Tuner.can_restore(str(path)):
        tuner = tune.Tuner.restore(str(path), trainable=trainable, resume_unfinished=True,
                                   resume_errored=True)
    else:
        tuner = make_tuner()
    return tuner.fit()


def search_stage(study: Study, study_dict: dict, data: SearchData, context: TrialContext,
                 storage: Path, resume: bool, verbose: int = 1):
    trainable = wrap(search_trainable, study.resources.search, study=study_dict, data=data,
                     context=context)
    spec = study.tune
    searcher = make_searcher(spec)
    scheduler = None
    if spec.scheduler is not None:
        scheduler = ASHAScheduler(time_attr="training_iteration", metric=spec.metric,
                                  mode=spec.mode, max_t=study.search.epochs,
                                  grace_period=spec.scheduler.grace_period,
                                  reduction_factor=spec.scheduler.reduction_factor)
    name = f"{context.arm}-search"

    def make_tuner() -> tune.Tuner:
        param_space = {} if searcher else {"seed": tune.grid_search(
            [s["seed"] for s in seed_grid(study.seed, spec.num_samples)])}
        tune_config = tune.TuneConfig(
            # metric and mode live in the searcher and the scheduler when they exist
            metric=None if searcher or scheduler else spec.metric,
            mode=None if searcher or scheduler else spec.mode,
            search_alg=searcher, scheduler=scheduler,
            num_samples=spec.num_samples if searcher else 1,
            max_concurrent_trials=spec.max_concurrent,
        )
        return tune.Tuner(trainable, param_space=param_space, tune_config=tune_config,
                          run_config=run_config(name, storage, verbose))

    return fit(trainable, name, storage, resume, make_tuner)


def best_candidates(results, metric: str, mode: str, top_k: int) -> list[Candidate]:
    """The `top_k` best distinct genotypes (by arch_hash) of a finished search stage."""
    found: dict[str, Candidate] = {}
    for result in results:
        metrics = result.metrics or {}
        if result.error is not None or "genotype" not in metrics or metric not in metrics:
            continue
        genotype = Genotype.from_dict(json.loads(metrics["genotype"]), "search result")
        score = metrics[metric]
        key = genotype.arch_hash()
        better = key not in found or (score > found[key].score if mode == "max"
                                      else score < found[key].score)
        if better:
            found[key] = Candidate(genotype, score, metrics.get("mlflow_run_id", ""),
                                   dict(result.config or {}))
    ranked = sorted(found.values(), key=lambda c: c.score, reverse=(mode == "max"))
    return ranked[:top_k]


def retrain_stage(study: Study, study_dict: dict, data: RetrainData, context: TrialContext,
                  candidates: list[Candidate], storage: Path, resume: bool, verbose: int = 1):
    trainable = wrap(retrain_trainable, study.resources.retrain, study=study_dict, data=data,
                     context=context)
    noises = study.retrain.noise or [study.data.noise]
    name = f"{context.arm}-retrain"

    def make_tuner() -> tune.Tuner:
        param_space = {
            "candidate": tune.grid_search([
                {"genotype": c.genotype.to_json(), "source": c.search_run_id, "tuned": c.tuned}
                for c in candidates
            ]),
            "noise": tune.grid_search([n.model_dump(mode="json") for n in noises]),
        }
        tune_config = tune.TuneConfig(max_concurrent_trials=study.tune.max_concurrent)
        return tune.Tuner(trainable, param_space=param_space, tune_config=tune_config,
                          run_config=run_config(name, storage, verbose))

    return fit(trainable, name, storage, resume, make_tuner)
