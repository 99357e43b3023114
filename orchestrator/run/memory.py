"""Each arm's search and retrain memory against the cluster, before any trial starts.

The estimates come from `trainables.loops.memory_study` (one meta-device training step).
A tuned arm is estimated at the corner of its `tune.space` that costs most: every
numeric parameter at its largest value, every non-numeric choice in turn. The
limit is the largest alive Ray node's `memory` resource; without a cluster
(`validate`, `--dry-run`) this machine's total memory. A phase with a GPU share
trains on the GPU: when this process sees CUDA, its limit is that share of the
device's memory (a remote cluster's GPUs are not visible from here, so their
trials are checked against node memory only).

`validate` checks a lower bound in a moment instead (`checked_weights`): each network's
weights and optimiser state, built on the meta device without a step; the step itself is
estimated by `--dry-run` and when the study starts, against the cluster it runs on.
"""

from __future__ import annotations

import itertools
import json
import os
from dataclasses import dataclass

from orchestrator.study import ArmPlan, StudyError, tuned_values, validate
from studyspec.dotted import with_overrides
from studyspec.schema import Study
from trainables.loops import GIB, study_memory, study_weights

PHASES = ("search", "retrain")
MAX_CORNERS = 16  # tuned-space corners estimated per arm
# what each phase's network is, for messages
WHAT = {"search": "its supernet at search.batch_size", "retrain": "the derived network at "
        "retrain.batch_size"}


class MemoryLimitError(StudyError):
    """An arm's trial would need more memory than the largest node (or GPU share) has
    (a study error: `study`, `validate` and `--dry-run` print it as one line)."""


@dataclass(frozen=True)
class Limit:
    bytes: int
    label: str  # e.g. "the largest Ray node", "this machine"


@dataclass(frozen=True)
class ArmMemory:
    name: str
    search: int | None  # estimated peak bytes of a search trial (None: no search)
    retrain: int | None  # ... of a retrain trial (None: search only)
    floor: bool = False  # weights and optimiser state only: a lower bound


def gib(count: int) -> str:
    return f"{count / GIB:.2f} GiB" if count >= GIB else f"{count / 2**20:.0f} MiB"


def tuned_corners(study: Study) -> list[Study]:
    """The study at the costliest corners of its tuned space (itself when nothing is tuned)."""
    candidates = []
    for key, spec in study.tune.space.items():
        values = tuned_values(spec)
        numeric = all(isinstance(v, int | float) and not isinstance(v, bool) for v in values)
        candidates.append([(key, max(values))] if numeric else [(key, v) for v in values])
    if not candidates:
        return [study]
    raw = study.model_dump(mode="json")
    corners = itertools.islice(itertools.product(*candidates), MAX_CORNERS)
    return [validate(with_overrides(raw, dict(corner)), "tune.space") for corner in corners]


def memory_key(study: Study, plan: ArmPlan) -> str:
    """What decides an arm's memory (not its seeds, learning rates or noise)."""
    fields = study.model_dump(mode="json", include={
        "data": {"color", "patch_size"}, "search_space": True,
        "search": {"batch_size", "loss", "weight_optimizer", "arch_optimizer"},
        "retrain": {"batch_size", "loss", "optimizer", "scale_options", "space_options"}})
    return json.dumps([fields, plan.genotype, plan.retrain], sort_keys=True)


def estimate_arms(plans: list[ArmPlan], floor: bool = False) -> list[ArmMemory]:
    """Every arm's estimate (identical configurations are estimated once); `floor`: its
    weights and optimiser state only."""
    cache: dict[str, dict] = {}
    estimates = []
    for plan in plans:
        peaks = {phase: None for phase in PHASES}
        for corner in tuned_corners(plan.study):
            key = memory_key(corner, plan)
            if key not in cache:
                cache[key] = (study_weights if floor else study_memory)(
                    corner, plan.genotype, plan.retrain)
            for phase, step in cache[key].items():
                if step is not None:
                    need = step.weights + step.optimizer if floor else step.total
                    peaks[phase] = max(peaks[phase] or 0, need)
        estimates.append(ArmMemory(plan.name, peaks["search"], peaks["retrain"], floor))
    return estimates


def machine_limit() -> Limit:
    return Limit(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES"), "this machine")


def cluster_limit() -> Limit:
    """The largest alive Ray node's `memory` resource (what its trials may use)."""
    import ray

    sizes = [node["Resources"].get("memory", 0) for node in ray.nodes() if node.get("Alive")]
    return Limit(int(max(sizes, default=0)), "the largest Ray node")


def phase_limit(study: Study, phase: str, node: Limit) -> Limit:
    share = getattr(study.resources, phase).gpu
    if share <= 0:
        return node
    import torch

    if not torch.cuda.is_available():
        return node
    device = torch.cuda.get_device_properties(0).total_memory
    return Limit(int(min(share, 1.0) * device), f"a {min(share, 1.0):g} GPU share")


def check_memory(estimates: list[ArmMemory], studies: dict[str, Study], node: Limit) -> None:
    """Refuse the first arm whose search or retrain trial would not fit, in one line."""
    for arm in estimates:
        for phase in PHASES:
            need = getattr(arm, phase)
            limit = phase_limit(studies[arm.name], phase, node)
            if need is not None and need > limit.bytes:
                what = "at least" if arm.floor else "about"
                alone = ": its weights and optimiser state alone" if arm.floor else \
                    f" ({WHAT[phase]}, data.patch_size)"
                raise MemoryLimitError(
                    f"arm '{arm.name}': {phase} needs {what} {gib(need)} per trial{alone}, "
                    f"but {limit.label} has {gib(limit.bytes)}; lower the batch size, patch "
                    "size or width")


def memory_lines(estimates: list[ArmMemory], node: Limit) -> list[str]:
    """The dry-run's per-arm estimates."""
    lines = [f"memory per trial (estimated; {node.label}: {gib(node.bytes)}):"]
    for arm in estimates:
        parts = [f"{phase} {gib(need)}" for phase in PHASES
                 if (need := getattr(arm, phase)) is not None]
        lines.append(f"  {arm.name}: {', '.join(parts)}")
    return lines


def checked_weights(plans: list[ArmPlan], node: Limit | None = None) -> None:
    """`validate`'s check in a moment: refuse an arm whose networks' weights and optimiser
    state alone exceed `node` (default: this machine)."""
    node = node or machine_limit()
    check_memory(estimate_arms(plans, floor=True), {plan.name: plan.study for plan in plans},
                 node)


def checked_memory(plans: list[ArmPlan], node: Limit | None = None) -> list[str]:
    """Estimate every arm, refuse what does not fit `node` (default: this machine);
    the dry-run's lines."""
    node = node or machine_limit()
    estimates = estimate_arms(plans)
    check_memory(estimates, {plan.name: plan.study for plan in plans}, node)
    return memory_lines(estimates, node)
