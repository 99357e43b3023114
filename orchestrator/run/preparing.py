"""What a study is before anything runs: the command's options, every arm validated and
planned with its data loaded (fail fast), and the errors a user can fix. Nothing here
imports Ray or MLflow: `validate` and `--dry-run` use only this."""

from __future__ import annotations

import json
from dataclasses import dataclass, replace

from orchestrator.study import ArmPlan, arm_indices, arm_plan, checked_arms
from studyspec.schema import Study
from trainables.data import StageData, stage_data, with_weights
from trainables.tracking import default_tracking_uri


@dataclass(frozen=True)
class RunOptions:
    tracking_uri: str | None = None  # default: the study's, else ./mlruns-local/mlflow.db
    storage: str = "./runs"  # Tune experiment folders (checkpoints), one per stage
    address: str | None = None  # a running Ray cluster; None starts a local one
    resume: bool = False
    source: str = "study"  # the study file, for messages
    verbose: int = 1
    arms: tuple[str, ...] = ()  # run only these arms (empty: all)
    command: tuple[str, ...] = ()  # the CLI's arguments (tagged on the parent run)
    no_cache: bool = False  # run every unit, even one an earlier study finished


def resolve_uri(study: Study, options: RunOptions) -> str:
    return options.tracking_uri or study.tracking.uri or default_tracking_uri()


@dataclass(frozen=True)
class PreparedArms:
    """Every arm's plan and data, validated before anything runs or is logged (fail fast)."""

    plans: list[ArmPlan]
    data: dict[str, StageData]  # arm name -> data (arms with the same data share one object)

    @property
    def studies(self) -> dict[str, Study]:
        """Arm name -> its validated study."""
        return {plan.name: plan.study for plan in self.plans}


def plan_arms(study: Study, source: str, arms: tuple[str, ...] = (),
              tracking_uri: str | None = None) -> list[ArmPlan]:
    """Every arm validated and planned (its genotype file read), data not yet loaded."""
    indices = arm_indices(study)
    return [arm_plan(arm, indices[arm.name], resolved, source, tracking_uri)
            for arm, resolved in checked_arms(study, source, list(arms))]


def prepare_arms(study: Study, source: str, arms: tuple[str, ...] = (),
                 tracking_uri: str | None = None) -> PreparedArms:
    plans, data, shared = plan_arms(study, source, arms, tracking_uri), {}, {}
    for plan in plans:
        key = json.dumps([plan.study.data.model_dump(mode="json"), plan.study.seed,
                          plan.study.search.monitor])
        if key not in shared:
            shared[key] = stage_data(plan.study)
        data[plan.name] = with_weights(shared[key], plan.weights)
    return PreparedArms([with_epoch_steps(plan, data[plan.name]) for plan in plans], data)


def with_epoch_steps(plan: ArmPlan, data: StageData) -> ArmPlan:
    """The plan with the steps of a search epoch its data decides (`search.epoch: images`:
    one crop of each Train-W image, as the search loop draws them)."""
    if plan.study.search.steps_per_epoch is not None:
        return plan
    steps = max(1, len(data.search.train_w) // plan.study.search.batch_size)
    return replace(plan, epoch_steps=(("search", steps),))


class TrialsFailed(RuntimeError):
    """Every trial of a stage failed; their child runs in MLflow say why."""


class ResourceError(ValueError):
    """A study asks for resources the Ray cluster does not have."""
