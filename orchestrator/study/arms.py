"""Ablation arms: the grid and the named arms of a study file, expanded by the orchestrator.

Ray Tune's OptunaSearch takes no grid_search axes, so every arm has its
own Optuna study over the outer hyperparameters; all arms still run as one
Tune experiment (`orchestrator.run.experiment`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from orchestrator.study.reading import StudyError, apply_profile, read_yaml, validate
from studyspec.dotted import with_overrides
from studyspec.schema import ArmSpec, ArmsSpec, BaselineSpec, ParamSpec, Study


@dataclass(frozen=True)
class Arm:
    name: str
    overrides: dict[str, Any] = field(default_factory=dict)  # dotted key -> value
    group: str | None = None  # results table (a key of the study's `groups`)
    seeds: tuple[int, ...] | None = None  # None: the study's seeds
    genotype: str | None = None  # retrain this genotype (path or runs:/...), no search
    retrain: bool = True  # False: search only
    baseline: str | None = None  # a `baselines:` entry's network: its own genotype, no search
    weights: str | None = None  # published weights of the baseline: evaluated, not trained


def grid_arms(spec: ArmsSpec) -> list[Arm]:
    return [Arm(name, overrides, spec.group) for name, overrides in spec.grid_points()]


def named_arm(spec: ArmSpec) -> Arm:
    seeds = tuple(spec.seeds) if spec.seeds is not None else None
    return Arm(spec.name, dict(spec.set), spec.group, seeds, spec.genotype, spec.retrain)


# What a baseline arm does not take from the study: the searched space and its tuning
BASELINE_OVERRIDES = {"retrain.scale_options": {}, "retrain.space_options": {},
                      "retrain.from": None,  # its space's default: from scratch
                      "retrain.stages": None,  # a reference network has no stages to unroll
                      "tune.space": {}, "tune.start_from": [], "tune.scheduler": None}


def baseline_arm(spec: BaselineSpec, study: Study) -> Arm:
    """A `baselines:` entry as an ungrouped arm with the study's data, noise and retraining
    (the tables add its rows to every group); published weights are evaluated once."""
    overrides = {"search_space": {"name": spec.name, "options": {}}, **BASELINE_OVERRIDES,
                 **spec.set}
    seeds = (study.seed_list()[0],) if spec.weights is not None else None
    return Arm(spec.arm_name, overrides, None, seeds, baseline=spec.name, weights=spec.weights)


def expand_arms(study: Study, only: list[str] | None = None) -> list[Arm]:
    """Grid product plus the named arms (a single `default` arm when there are none), then
    the baselines; `only` keeps the named subset (an unknown name is an error listing the known)."""
    arms = grid_arms(study.arms) + [named_arm(a) for a in study.arms.named]
    arms = (arms or [Arm("default")]) + [baseline_arm(spec, study) for spec in study.baselines]
    names = [arm.name for arm in arms]
    duplicate = next((name for name in names if names.count(name) > 1), None)
    if duplicate:
        raise StudyError(f"arms: arm name '{duplicate}' appears twice")
    if only:
        unknown = [name for name in only if name not in {arm.name for arm in arms}]
        if unknown:
            known = ", ".join(arm.name for arm in arms)
            raise StudyError(f"--arms: unknown arm '{unknown[0]}' (known: {known})")
        arms = [arm for arm in arms if arm.name in only]
    return arms


def arm_indices(study: Study) -> dict[str, int]:
    """Each arm's position in the whole study (kept when --arms runs a subset: table order
    and each arm's Optuna sampler seed stay those of the full study)."""
    return {arm.name: index for index, arm in enumerate(expand_arms(study))}


def arm_study(study: Study, arm: Arm, source: str = "study") -> Study:
    """The study with the arm's overrides applied, validated (errors name the arm)."""
    if not arm.overrides:
        return study
    raw = study.model_dump(mode="json")
    try:
        return validate(with_overrides(raw, arm.overrides), f"{source}: arm '{arm.name}'")
    except ValueError as error:
        raise StudyError(str(error)) from None


def tuned_values(spec: ParamSpec) -> list[Any]:
    """The values Optuna may propose that bound the space: every choice, or low and high."""
    if spec.type == "categorical":
        return list(spec.choices)
    bounds = [spec.low, spec.high]
    return [int(v) for v in bounds] if spec.type == "int" else bounds


def check_tuned_space(study: Study, label: str) -> None:
    """Every choice / bound of `tune.space` must give a valid study, before any trial runs."""
    raw = study.model_dump(mode="json")
    for key, spec in study.tune.space.items():
        for value in tuned_values(spec):
            try:
                validate(with_overrides(raw, {key: value}), f"{label}: tune.space.{key}={value}")
            except ValueError as error:
                raise StudyError(str(error)) from None


def check_published(path: str) -> None:
    """Each `published` entry of a study file names an arm of the study or of one of its
    profiles (a run shows the entries of the arms it has)."""
    raw = read_yaml(path)
    entries = raw.get("published")
    if not isinstance(entries, list) or not entries:
        return
    known: set[str] = set()
    for profile in [None, *(raw.get("profiles") or {})]:
        try:
            study = validate(apply_profile(raw, profile, path), path)
            known |= {arm.name for arm in expand_arms(study)}
        except (StudyError, ValueError):
            continue  # reported when that profile is run
    for index, entry in enumerate(entries):
        arm = entry.get("arm") if isinstance(entry, dict) else None
        if known and isinstance(arm, str) and arm not in known:
            raise StudyError(f"{path}: published.{index}.arm: '{arm}' is no arm of the study "
                             f"or its profiles (arms: {', '.join(sorted(known))})")


def checked_arms(study: Study, source: str = "study",
                 only: list[str] | None = None) -> list[tuple[Arm, Study]]:
    """Every arm's study, validated with its overrides and its tuned space's extremes."""
    checked = []
    for arm in expand_arms(study, only):
        resolved = arm_study(study, arm, source)
        check_tuned_space(resolved, f"{source}: arm '{arm.name}'")
        checked.append((arm, resolved))
    return checked
