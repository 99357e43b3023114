"""Cost before you start: `study --dry-run` prints the estimated device-hours of each arm's
search and retraining on this machine's device.

Each distinct network is timed for a few training steps and an evaluation pass
(`trainables.loops.timing`), with the threads a trial gets; that, times the steps the study
asks for and the images it validates and tests on, plus a fixed cost per trial (its
start, MLflow run, checkpoints and plots: `TRIAL_OVERHEAD_S`, measured on this project's
CPU benchmarks), is a trial's time. Units an earlier study finished (`orchestrator.run.cache`)
cost nothing. Device-hours are a trial's hours times its share: CPU-hours (`resources.
<phase>.cpu` cores), or GPU-hours of the named GPU (`resources.<phase>.gpu`). A search's
retrained network is not known before it ends: the largest network it can derive stands
for it, so a retraining estimate is an upper bound.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from orchestrator.run.progress import TRIAL_OVERHEAD_S, clock_text
from orchestrator.study import ArmPlan
from trainables.data import StageData
from trainables.loops import reference_now, retrain_seconds, search_seconds
from trainables.tracking import store_exists

# the study's own on 2 quiet CPU cores: Ray's start (3.4 s measured) and, around the trials
# of the quickstart's smoke study, planning, Tune, the parent run and its tables (about 6 s)
STUDY_OVERHEAD_S = 10.0
# the command's around the study on the same cores: imports (6.0 s for `--help`), Ray's start
# (3.0 s) and stop (1.4 s)
COMMAND_OVERHEAD_S = 10.0
# `reference_seconds()` on the same quiet cores: the fixed costs above (and a trial's) are
# scaled by how much slower it runs now, as the timed steps are by their own timing
REFERENCE_S = 0.035  # measured: 0.034-0.038 s


def load_factor() -> float:
    """How many times slower than the quiet machine the fixed costs were measured on (>= 1)."""
    return max(1.0, reference_now() / REFERENCE_S)


@dataclass(frozen=True)
class ArmCost:
    arm: str
    search_s: float  # all its search trials, in trial seconds
    retrain_s: float
    share: float  # device units a trial holds (cores, or a GPU fraction)
    cached: int  # trials an earlier study finished

    @property
    def device_hours(self) -> float:
        return (self.search_s + self.retrain_s) * self.share / 3600


def device() -> tuple[torch.device, str]:
    if torch.cuda.is_available():
        return torch.device("cuda"), f"GPU-hours ({torch.cuda.get_device_name(0)})"
    return torch.device("cpu"), "CPU-hours (cores x hours)"


def arm_cost(arm: ArmPlan, data: StageData, hits: dict[str, int] | None = None,
             trial_overhead: float = TRIAL_OVERHEAD_S) -> ArmCost:
    """`hits`: the arm's search and retrain trials an earlier study finished;
    `trial_overhead`: a trial's fixed seconds."""
    run_on, _ = device()
    study, hits = arm.study, hits or {}
    stage_counts = study.retrain.stages or [None]
    searches = max(0, arm.units() - hits.get("search", 0)) if arm.genotype is None else 0
    per_stage = arm.units() * len(arm.noises)
    retrains = max(0, per_stage * len(stage_counts) - hits.get("retrain", 0)) \
        if arm.retrain else 0
    search = searches * (search_seconds(study, data.search, run_on) + trial_overhead) \
        if searches else 0.0
    retrain = 0.0
    proxy = study.retrain.proxy if arm.tuned else None
    if proxy is not None:  # every candidate short, the `keep` best in full
        full_steps = study.retrain.epochs * study.retrain.steps_per_epoch
        scale = (min(proxy.keep, arm.units()) + arm.units() * min(1.0, proxy.steps /
                                                                   max(1, full_steps)))
        retrains = retrains / max(1, arm.units()) * scale
    for stages in stage_counts if retrains else []:
        each = retrain_seconds(study, arm.genotype, data.retrain, run_on, stages)
        retrain += retrains / len(stage_counts) * (each + trial_overhead)
    resources = study.resources.retrain
    share = resources.gpu if run_on.type == "cuda" and resources.gpu else resources.cpu
    return ArmCost(arm.name, search, retrain, share, sum(hits.values()))


def cost_lines(costs: list[ArmCost], slots: int, study_s: float = STUDY_OVERHEAD_S
               ) -> list[str]:
    """Per arm and in total; the command's wall time if `slots` trials run at once, the
    study's own start and tables (`study_s`) and the command's around it (as loaded)
    included."""
    _, unit = device()
    lines = [f"cost on this machine, estimated from timed steps, in {unit}:"]
    for cost in costs:
        cached = f"; {cost.cached} trial(s) cached" if cost.cached else ""
        lines.append(f"  arm {cost.arm}: search {clock_text(cost.search_s)}, retraining "
                     f"{clock_text(cost.retrain_s)} of trial time = {cost.device_hours:.3f}"
                     f"{cached}")
    total = sum(cost.device_hours for cost in costs)
    wall = trial_seconds(costs) / max(1, slots) + study_s * (1 + COMMAND_OVERHEAD_S /
                                                              STUDY_OVERHEAD_S)
    lines.append(f"  total {total:.3f} {unit.split(' ')[0]}; about {clock_text(wall)} of wall "
                 f"time at {slots} trial(s) at once")
    return lines


def trial_seconds(costs: list[ArmCost]) -> float:
    return sum(cost.search_s + cost.retrain_s for cost in costs)


def study_cost(study, prepared, source: str, uri: str) -> list[str]:
    """The cost lines of a prepared study on this machine (cached trials not counted)."""
    return cost_lines(*study_costs(study, prepared, source, uri))


def study_costs(study, prepared, source: str, uri: str) -> tuple[list[ArmCost], int, float]:
    """Each arm's cost, how many trials run at once on this machine, and the study's own
    seconds (the fixed costs scaled by this machine's `load_factor` now)."""
    import os

    hits = {}
    if store_exists(uri):  # what an earlier study finished (MLflow: imported only then)
        from orchestrator.run.cache import cached_trials, identities
        from orchestrator.run.provenance import study_provenance

        provenance = study_provenance(prepared.studies.values(), source)
        arm_ids, lookups, _ = identities(prepared.studies, provenance.trial_tags, False)
        hits = cached_trials(prepared.plans, uri, arm_ids) if lookups else {}
    factor = load_factor()
    costs = [arm_cost(arm, prepared.data[arm.name], hits.get(arm.name), TRIAL_OVERHEAD_S * factor)
             for arm in prepared.plans]
    cpus = os.cpu_count() or 1
    per_trial = max(max(a.study.resources.search.cpu, a.study.resources.retrain.cpu)
                    for a in prepared.plans)
    slots = max(1, min(study.tune.max_concurrent, int(cpus // per_trial)))
    return costs, slots, STUDY_OVERHEAD_S * factor

