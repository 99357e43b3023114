"""ASHA early stopping within each arm's search trials, in a study that runs every arm at once.

Ray Tune's `ASHAScheduler` compares every trial it sees; in a study experiment
the trials of different arms (and retrain trials) are not comparable, so each
arm with `tune.scheduler` gets its own ASHA over its search trials, and every
other trial runs to the end.
"""

from __future__ import annotations

from ray.tune.schedulers import ASHAScheduler, FIFOScheduler, TrialScheduler

from orchestrator.study import ArmPlan


class PerArmASHA(FIFOScheduler):
    def __init__(self, ashas: dict[str, ASHAScheduler]):
        super().__init__()
        self.ashas = ashas

    @classmethod
    def for_arms(cls, arms: list[ArmPlan]) -> PerArmASHA | None:
        ashas = {}
        for arm in arms:
            spec = arm.study.tune
            if spec.scheduler is None:
                continue
            metric = spec.objective_list()[0] if spec.objective == "supernet" else None
            ashas[arm.name] = ASHAScheduler(
                time_attr="training_iteration", metric=metric.metric if metric else "val/score",
                mode=metric.mode if metric else "max", max_t=arm.study.search.epochs,
                grace_period=spec.scheduler.grace_period,
                reduction_factor=spec.scheduler.reduction_factor)
        return cls(ashas) if ashas else None

    def route(self, trial) -> ASHAScheduler | None:
        config = trial.config or {}
        return self.ashas.get(config.get("arm")) if config.get("phase") == "search" else None

    def on_trial_add(self, tune_controller, trial) -> None:
        if (asha := self.route(trial)) is not None:
            asha.on_trial_add(tune_controller, trial)

    def on_trial_result(self, tune_controller, trial, result) -> str:
        asha = self.route(trial)
        return (asha.on_trial_result(tune_controller, trial, result) if asha is not None
                else TrialScheduler.CONTINUE)

    def on_trial_complete(self, tune_controller, trial, result) -> None:
        if (asha := self.route(trial)) is not None:
            asha.on_trial_complete(tune_controller, trial, result)

    def on_trial_remove(self, tune_controller, trial) -> None:
        if (asha := self.route(trial)) is not None:
            asha.on_trial_remove(tune_controller, trial)
