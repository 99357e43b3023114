"""The arms of a study: a grid of dotted keys (its Cartesian product) and named
arms, each a set of overrides of the study with optional seeds, group and genotype.

Arm names are made here (a grid arm is named by its values), so that the schema can
refuse two arms of one name.
"""

from __future__ import annotations

import itertools
import re
from typing import Annotated, Any, Literal

from pydantic import BeforeValidator, Field, field_validator, model_validator

from studyspec.fields import MAX_LIST, Name, Seed, Strict, error_at

ARM_NAME = r"^[A-Za-z0-9_][A-Za-z0-9_.=+-]*$"  # no separators: names become folders and tags


MAX_ARMS = 10_000  # arms of one study (a grid's product included)
Seeds = Annotated[list[Seed], Field(max_length=MAX_LIST)]


def unique_seeds(seeds: list[int] | None) -> list[int] | None:
    if seeds is not None and not seeds:
        raise ValueError("list at least one seed")
    if seeds is not None and len(set(seeds)) != len(seeds):
        raise ValueError(f"seeds repeat: {seeds}")
    return seeds


class ArmSpec(Strict):
    """A named arm: study overrides, and optionally its own seeds, a table group, a
    genotype to retrain without searching (a path or runs:/<id>/genotype.json), or
    no retraining (search curves only)."""

    name: str = Field(pattern=ARM_NAME)
    group: str | None = None  # a key of the study's `groups`
    set: dict[str, Any] = {}  # dotted study key -> value
    seeds: Seeds | None = None  # default: the study's seeds
    genotype: Name | None = None
    retrain: bool = True

    _seeds = field_validator("seeds")(unique_seeds)

    @model_validator(mode="after")
    def _retrains_a_given_genotype(self) -> ArmSpec:
        if self.genotype is not None and not self.retrain:
            raise ValueError("an arm with a genotype only retrains it: drop retrain: false")
        return self


class ArmsSpec(Strict):
    # dotted key -> values (at least one); arms = Cartesian product (at most MAX_ARMS)
    grid: dict[str, Annotated[list[Any], Field(min_length=1, max_length=MAX_LIST)]] = {}
    group: str | None = None  # the table group of the grid's arms
    named: Annotated[list[ArmSpec], Field(max_length=MAX_ARMS)] = []  # extra named arms

    @model_validator(mode="after")
    def _countable_and_unique(self) -> ArmsSpec:
        product = 1
        for values in self.grid.values():
            product *= len(values)
            if product + len(self.named) > MAX_ARMS:
                raise error_at("ArmsSpec", "grid", f"more than {MAX_ARMS:,} arms")
        seen: set[str] = set()
        for name, _ in self.grid_points():
            if name in seen:
                raise error_at("ArmsSpec", "grid", f"two points of the grid are both "
                               f"named '{name}' (a value repeats)")
            seen.add(name)
        for index, arm in enumerate(self.named):
            if arm.name in seen:
                raise error_at("ArmsSpec", f"named.{index}.name",
                               f"arm name '{arm.name}' appears twice")
            seen.add(arm.name)
        return self

    def grid_points(self) -> list[tuple[str, dict[str, Any]]]:
        """(arm name, dotted overrides) of every point of the grid, names from the values."""
        if not self.grid:
            return []
        keys = list(self.grid)
        points = []
        for values in itertools.product(*(self.grid[key] for key in keys)):
            name = "+".join(f"{key.split('.')[-1]}={value_label(v)}"
                            for key, v in zip(keys, values))
            points.append((name, dict(zip(keys, values))))
        return points


def value_label(value: Any) -> str:
    """A grid value in an arm name: only the characters an arm name may hold."""
    if isinstance(value, bool):
        return "on" if value else "off"
    return re.sub(r"[^A-Za-z0-9_.=-]", "_", str(value).replace(" ", ""))


def named_entry(value: Any) -> Any:
    """`dncnn` in a list of baselines stands for `{name: dncnn}`."""
    return {"name": value} if isinstance(value, str) else value


class BaselineSpec(Strict):
    """A hand-designed reference network that becomes one more arm of the study, evaluated
    with the study's own data, test sets and noise; its rows appear in every table."""

    name: Literal["dncnn"]  # DnCNN-17 (Zhang et al., TIP 2017), trained with `retrain`
    # published weights (a state dict, relative to the study file) evaluated without training:
    # grey AWGN sigma 25 only (DnCNN-S, ../shared/reference/dncnn_sigma25.pth)
    weights: Name | None = None
    # dotted study keys for this network alone, e.g. its own retraining where the study's
    # is not a training from scratch (a single-shot study's `retrain.epochs: 0`)
    set: dict[str, Any] = {}

    @property
    def arm_name(self) -> str:
        return f"baseline-{self.name}" + ("-published" if self.weights is not None else "")


Baseline = Annotated[BaselineSpec, BeforeValidator(named_entry)]
