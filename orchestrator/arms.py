"""Ablation arms: the grid of a study file, expanded by the orchestrator itself.

Ray's Optuna searcher cannot take grid axes (SPEC 5.5), so every arm is its
own Tune stage with its own Optuna study over the outer hyperparameters.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from typing import Any

from orchestrator.dotted import with_overrides
from orchestrator.schema import Study
from orchestrator.studyfile import StudyError, validate


@dataclass(frozen=True)
class Arm:
    name: str
    overrides: dict[str, Any] = field(default_factory=dict)  # dotted key -> value


def value_label(value: Any) -> str:
    if isinstance(value, bool):
        return "on" if value else "off"
    return str(value).replace(" ", "")


def grid_arms(grid: dict[str, list[Any]]) -> list[Arm]:
    if not grid:
        return []
    keys = list(grid)
    arms = []
    for values in itertools.product(*(grid[key] for key in keys)):
        name = ",".join(f"{key.split('.')[-1]}={value_label(v)}" for key, v in zip(keys, values))
        arms.append(Arm(name, dict(zip(keys, values))))
    return arms


def expand_arms(study: Study) -> list[Arm]:
    """Grid product plus the named arms; a single `default` arm when there are none."""
    arms = grid_arms(study.arms.grid) + [Arm(a.name, dict(a.set)) for a in study.arms.named]
    names = [arm.name for arm in arms]
    duplicate = next((name for name in names if names.count(name) > 1), None)
    if duplicate:
        raise StudyError(f"arms: arm name '{duplicate}' appears twice")
    return arms or [Arm("default")]


def arm_study(study: Study, arm: Arm, source: str = "study") -> Study:
    """The study with the arm's overrides applied, validated (errors name the arm)."""
    if not arm.overrides:
        return study
    raw = study.model_dump(mode="json")
    try:
        return validate(with_overrides(raw, arm.overrides), f"{source}: arm '{arm.name}'")
    except ValueError as error:
        raise StudyError(str(error)) from None
