"""The fuzz test's verdicts come from its own table (`fuzz_oracle.py`), not from the schema.

Loosen the real loader (a bound widened by one, a type that also admits a string: the
pydantic field changed and the models holding it rebuilt, so that `checked_study` reads
studies through the loosened schema) and the fuzz test's check fails on that key's cases;
tighten a bound and a documented limit is refused. On the loader as it is, the same cases
pass. A search space's options model is loosened alike. The table itself imports neither
the schema nor pydantic.
"""

from __future__ import annotations

import copy
import subprocess
import sys
from collections import Counter
from collections.abc import Callable
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal

import annotated_types as limits
import pytest
from pydantic import BaseModel, Field

from searchspaces.hinas.options import HiNASOptions
from studyspec.schema import DataSpec, NoiseSpec, RetrainSpec, SearchSpec, Sigmas, Study
from studyspec.training import OptimizerSpec
from tests.orchestrator.fuzz_check import outcome
from tests.orchestrator.study_mutations import STUDIES, family_cases, shipped

BASE = next(base for base in shipped() if base.name == "quickstart")
REPO = STUDIES.parent


def swap(old: Any, new: Any):
    """A change of a field's metadata: the constraint `old` replaced by `new`."""
    return lambda info: {"metadata": [new if item == old else item for item in info.metadata]}


def annotated(annotation: Any):
    return lambda info: {"annotation": annotation}


@dataclass(frozen=True)
class Change:
    """One field of the loader changed, and what the fuzz check then reports."""

    key: str  # the study key whose cases are run
    model: type[BaseModel]
    field: str
    change: Callable  # FieldInfo -> {attribute: new value}
    rebuild: tuple[type[BaseModel], ...]  # the field's model, then those holding it
    status: str  # what at least one case reports


SEARCH, NOISE = (SearchSpec, Study), (NoiseSpec, DataSpec, RetrainSpec, Study)
OPTIMIZER = (OptimizerSpec, SearchSpec, RetrainSpec, Study)
CHANGES = {
    "batch_size ge=1 -> ge=0": Change("search.batch_size", SearchSpec, "batch_size",
                                      swap(limits.Ge(1), limits.Ge(0)), SEARCH, "accepted"),
    # refused still (validate_from_epoch < epochs), but as validate_from_epoch's fault
    "epochs ge=1 -> ge=0": Change("search.epochs", SearchSpec, "epochs",
                                  swap(limits.Ge(1), limits.Ge(0)), SEARCH, "bad_message"),
    "momentum lt=1 -> le=1": Change("search.weight_optimizer.momentum", OptimizerSpec,
                                    "momentum", swap(limits.Lt(1), limits.Le(1)), OPTIMIZER,
                                    "accepted"),
    "sigma le=255 -> le=256": Change("data.noise.sigma", NoiseSpec, "sigma", annotated(
        Annotated[float, Field(ge=0, le=256)] | Sigmas | None), NOISE, "accepted"),
    "augment bool -> bool | str": Change("data.augment", DataSpec, "augment",
                                         annotated(bool | str), (DataSpec, Study), "accepted"),
    "select_by Literal -> Literal | str": Change("search.select_by", SearchSpec, "select_by",
                                                 annotated(Literal["score", "psnr"] | str),
                                                 SEARCH, "accepted"),
    # a search space's own options model, validated apart from the study's
    "hinas num_layers le=32 -> le=33": Change("search_space.options.num_layers", HiNASOptions,
                                              "num_layers", swap(limits.Le(32), limits.Le(33)),
                                              (HiNASOptions,), "accepted"),
    # tightened: the documented limits themselves are refused
    "batch_size ge=1 -> ge=2": Change("search.batch_size", SearchSpec, "batch_size",
                                      swap(limits.Ge(1), limits.Ge(2)), SEARCH, "refused"),
    "sigma le=255 -> lt=255": Change("data.noise.sigma", NoiseSpec, "sigma", annotated(
        Annotated[float, Field(ge=0, lt=255)] | Sigmas | None), NOISE, "refused"),
}


@contextmanager
def changed(change: Change):
    """The field changed, and every model from it up to `Study` rebuilt (pydantic copies a
    nested model's validator into its parent's); restored and rebuilt again after."""
    fields = change.model.__pydantic_fields__
    original = fields[change.field]
    fields[change.field] = copy.copy(original)
    for attribute, value in change.change(original).items():
        setattr(fields[change.field], attribute, value)
    try:
        for model in change.rebuild:
            model.model_rebuild(force=True)
        yield
    finally:
        fields[change.field] = original
        for model in change.rebuild:
            model.model_rebuild(force=True)


@pytest.fixture(scope="module")
def folder(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("oracle")
    (path / "genotypes").symlink_to(STUDIES / "genotypes")
    return path


def statuses(key: str, folder: Path) -> Counter:
    cases = family_cases(key, BASE)
    assert any(case.expect == "accept" for case in cases) and len(cases) > 10, key
    return Counter(outcome(case, folder)[0] for case in cases)


@pytest.mark.parametrize("key", sorted({change.key for change in CHANGES.values()}))
def test_the_loader_as_it_is_passes_every_case_of_the_key(key, folder):
    counts = statuses(key, folder)
    assert set(counts) == {"clean"}, dict(counts)


@pytest.mark.parametrize("name", CHANGES)
def test_a_loosened_or_tightened_loader_fails_the_check(name, folder):
    change = CHANGES[name]
    with changed(change):
        counts = statuses(change.key, folder)
    assert counts[change.status] >= 1, dict(counts)
    assert statuses(change.key, folder) == Counter(clean=sum(counts.values()))  # restored


def test_the_table_reads_no_schema():
    """Importing the oracle and its cases loads neither the schema nor pydantic."""
    probe = ("import sys, tests.orchestrator.fuzz_cases; print(sorted({name.split('.')[0] "
             "for name in sys.modules} & {'studyspec', 'pydantic', 'searchspaces', "
             "'orchestrator'}))")
    done = subprocess.run([sys.executable, "-c", probe], cwd=REPO, capture_output=True,
                          text=True, timeout=60)
    assert done.returncode == 0 and done.stdout.strip() == "[]", done.stderr or done.stdout
