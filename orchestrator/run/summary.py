"""The plan of a study as text (`--dry-run`): each arm's units, and the first trials."""

from __future__ import annotations

from orchestrator.run.searcher import StudySearcher
from orchestrator.study import ArmPlan
from studyspec.schema import Study

FIRST_TRIALS = 3  # of each tuned arm: the start_from points come first


def arm_line(arm: ArmPlan) -> str:
    study = arm.study
    tuned = ", ".join(study.tune.space) or "nothing"
    work = ("retrain the given genotype" if arm.genotype else
            f"search {study.search.epochs} epochs ({study.search.strategy})")
    stages = study.retrain.stages
    at = f" x T = {', '.join(map(str, stages))}" if stages else ""  # retrain.stages
    retrain = (f"retrain {study.retrain.epochs} epochs x {len(arm.noises)} noise "
               f"level(s){at}" if arm.retrain else "no retraining")
    group = f" group {arm.group}" if arm.group else ""
    return (f"  arm {arm.name} [{arm.method}]{group}: {arm.units()} unit(s) = "
            f"{arm.num_samples} sample(s) x seeds {list(arm.seeds)}, tuning {tuned}; "
            f"{work}; {retrain}")


def first_trials(arms: list[ArmPlan]) -> list[str]:
    """The first search configs the study searcher would emit (a fresh copy of it)."""
    searcher, lines = StudySearcher(arms), []
    for index in range(len(arms) * FIRST_TRIALS):
        config = searcher.suggest(f"dry{index}")
        if not isinstance(config, dict):
            break
        tuned = ", ".join(f"{k}={v}" for k, v in config["tuned"].items()) or "-"
        lines.append(f"  trial {index + 1}: {config['unit']} {config['phase']} ({tuned})")
    return lines


def plan_text(study: Study, arms: list[ArmPlan], memory: list[str] | None = None,
              cost: list[str] | None = None) -> str:
    """The plan; `memory`: the per-arm memory estimates (`orchestrator.run.memory.memory_lines`),
    `cost`: the device-hours (`orchestrator.run.estimate`)."""
    units = sum(arm.units() for arm in arms)
    head = (f"study {study.name}: train {study.data.train}, test {', '.join(study.data.test)}; "
            f"{len(arms)} arm(s), {units} unit(s), at most {study.tune.max_concurrent} "
            "trial(s) at once")
    return "\n".join([head, *map(arm_line, arms), *(memory or []), *(cost or []),
                      "first trials:",
                      *first_trials(arms)])
