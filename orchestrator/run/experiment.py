"""A study as one Ray Tune experiment: the study searcher, per-phase resources, one trainable.

Every arm's search and retrain trials share the experiment, so Tune runs any
of them as soon as the cluster has room for its phase's CPU/GPU share; the
experiment folder under `--storage` holds every trial's checkpoints and the
searcher's state, so an interrupted study resumes with `Tuner.restore`.
"""

from __future__ import annotations

from typing import Any

from ray import tune

from orchestrator.run.progress import ProgressLines
from orchestrator.run.scheduler import PerArmASHA
from orchestrator.run.searcher import StudySearcher
from orchestrator.run.signals import NoSpaceStop
from orchestrator.run.storage import local_path, storage_filesystem
from orchestrator.study import ArmPlan
from trainables.data import StageData
from trainables.tune import Loops, TrialContext, study_trainable

EXPERIMENT = "study"  # the Tune experiment's folder under <storage>/<study name>


def phase_resources(arms: list[ArmPlan]):
    """Tune's resource request of a trial, from its config: its arm's share for its phase."""
    table = {arm.name: {phase: {"cpu": getattr(arm.study.resources, phase).cpu,
                                "gpu": getattr(arm.study.resources, phase).gpu}
                        for phase in ("search", "retrain")} for arm in arms}

    def resources(config: dict[str, Any]) -> dict[str, float]:
        return table[config["arm"]][config["phase"]]

    return resources


def make_trainable(arms: list[ArmPlan], data: dict[str, StageData], context: TrialContext,
                   loops: Loops | None = None):
    studies = {arm.name: arm.plain_study() for arm in arms}  # Ray's plain data
    fixed = tune.with_parameters(study_trainable, studies=studies, data=data, context=context,
                                 loops=loops or Loops())
    return tune.with_resources(fixed, phase_resources(arms))


def run_config(storage: str, verbose: int, max_failures: int = 0,
               arms: tuple[ArmPlan, ...] = (), slots: int = 1,
               cached: dict[str, dict[str, int]] | None = None) -> tune.RunConfig:
    """verbose 0: silent; 1: a status line per arm (`cached`: each arm's trials per phase
    the result cache gives, not to be waited for); 2: Tune's own status tables too."""
    return tune.RunConfig(
        name=EXPERIMENT,
        storage_path=str(local_path(storage) or storage),
        storage_filesystem=storage_filesystem(storage),  # a local folder: atomic writes
        checkpoint_config=tune.CheckpointConfig(num_to_keep=2),
        failure_config=tune.FailureConfig(max_failures=max_failures),
        verbose=0 if verbose < 2 else 1,
        callbacks=[NoSpaceStop(), *([ProgressLines(list(arms), slots=slots, cached=cached)]
                                   if verbose else [])],
    )


def make_tuner(trainable, arms: list[ArmPlan], max_concurrent: int, storage: str,
               verbose: int, linker=None, max_failures: int = 0, cache=None,
               cached: dict[str, dict[str, int]] | None = None) -> tune.Tuner:
    tune_config = tune.TuneConfig(
        search_alg=StudySearcher(arms, linker, cache), scheduler=PerArmASHA.for_arms(arms),
        num_samples=-1,  # until the searcher says the study is finished
        max_concurrent_trials=max_concurrent,
        reuse_actors=True)  # a trial with the same resources reuses a worker: no new
    #                         process, no repeated imports (about 5 CPU-seconds a trial here)
    return tune.Tuner(trainable, tune_config=tune_config,
                      run_config=run_config(storage, verbose, max_failures, tuple(arms),
                                            max_concurrent, cached))


def fit(trainable, storage: str, resume: bool, new_tuner) -> tune.ResultGrid:
    """Fit a fresh Tuner, or restore the study's experiment when resuming."""
    path = f"{str(local_path(storage) or storage).rstrip('/')}/{EXPERIMENT}"  # or a URI
    filesystem = storage_filesystem(storage)
    if resume and tune.Tuner.can_restore(path, storage_filesystem=filesystem):
        # errored trials stay errored: the searcher has already accounted for them
        tuner = tune.Tuner.restore(path, trainable=trainable, resume_unfinished=True,
                                   resume_errored=False, storage_filesystem=filesystem)
    else:
        tuner = new_tuner()
    return tuner.fit()
