"""What a study will run: one `ArmPlan` per arm, resolved before anything starts.

An arm's units are its seeds (or, with a tuned space, its Optuna samples at
every seed): each unit searches (unless the arm names a genotype), derives a
genotype and retrains it at every noise level of `retrain.noise` (unless the
arm is search-only). The plan is what the study searcher schedules and what
`--dry-run` prints. A plan keeps the arm's validated `Study` and its noise specs as
objects; they become plain data only for Ray Tune (`ArmPlan.plain_study`, the trial
configs of `orchestrator.study.units`).
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from orchestrator.study.arms import Arm
from orchestrator.study.reading import StudyError
from searchspaces.baselines import baseline_genotype
from searchspaces.genotype import Genotype, GenotypeError
from searchspaces.registry import get_space
from studyspec.schema import NoiseSpec, Study


@dataclass(frozen=True)
class ArmPlan:
    """One arm, resolved: its validated study, seeds, and what each unit runs."""

    name: str
    index: int  # position in the study (table order)
    group: str  # results table ("" : the study's ungrouped table)
    study: Study  # the arm's validated study (arm overrides applied)
    seeds: tuple[int, ...]
    genotype: str | None  # JSON of a given genotype: retrain only
    retrain: bool  # False: search only
    noises: tuple[NoiseSpec, ...]  # one retrain per entry
    baseline: bool = False  # a `baselines:` arm (tagged baseline=true, a row in every table)
    weights: str | None = None  # published weights (a file) evaluated instead of retraining
    # steps of an epoch the study leaves to its data (`search.epoch: images`), phase ->
    # count, once the data is split (`orchestrator.run.prepare_arms`)
    epoch_steps: tuple[tuple[str, int], ...] = ()

    def plain_study(self) -> dict[str, Any]:
        """The study as Ray Tune and MLflow params need it: plain JSON data."""
        return self.study.model_dump(mode="json")

    @property
    def tuned(self) -> bool:
        return bool(self.study.tune.space)

    @property
    def num_samples(self) -> int:
        """Optuna samples of a tuned arm; 1 otherwise (the unit is the seed)."""
        return self.study.tune.num_samples if self.tuned else 1

    @property
    def method(self) -> str:
        return self.study.search_space.name

    def units(self) -> int:
        return self.num_samples * len(self.seeds)

    def work(self, phase: str) -> float:
        """Estimated work of one trial of `phase` (search: 0 for a given genotype): steps x
        batch x patch pixels. Comparable between arms of one space; it orders the emission."""
        if phase == "search" and self.genotype is not None:
            return 0.0
        spec, patch = getattr(self.study, phase), self.study.data.patch_size
        steps = spec.steps_per_epoch or dict(self.epoch_steps).get(phase, 1)
        return float(spec.epochs * steps * spec.batch_size * patch**2)

    def chain(self) -> float:
        """Estimated work from a unit's start to its last retrain's end."""
        return self.work("search") + (self.work("retrain") if self.retrain else 0.0)


def arm_plan(arm: Arm, index: int, study: Study, source: str,
             tracking_uri: str | None = None) -> ArmPlan:
    """Resolve `arm` (its study already validated); a given genotype is loaded and checked."""
    genotype, weights = None, None
    if arm.genotype is None and arm.baseline is None and \
            not get_space(study.search_space.name).searchable:
        raise StudyError(f"{source}: arm '{arm.name}': search_space.name: "
                         f"{study.search_space.name!r} has nothing to search; give the arm a "
                         "genotype (e.g. studies/genotypes/dncnn-17.json)")
    if arm.genotype is not None:
        genotype = load_arm_genotype(arm, study, source, tracking_uri).to_json()
    if arm.baseline is not None:
        genotype = baseline_genotype(arm.baseline, published=arm.weights is not None).to_json()
    if arm.weights is not None:
        weights = checked_weights(arm, genotype, source)
    check_start(arm, study, source)
    noises = study.retrain.noise or [study.data.noise]
    seeds = arm.seeds if arm.seeds is not None else tuple(study.seed_list())
    return ArmPlan(arm.name, index, arm.group or "", study, tuple(seeds), genotype, arm.retrain,
                   tuple(noises), arm.baseline is not None, weights)


def check_start(arm: Arm, study: Study, source: str) -> None:
    """Inherited weights need the arm's own search; an untrained start needs epochs."""
    where = f"{source}: arm '{arm.name}'"
    start = study.retrain_start()
    if start == "inherit" and (arm.genotype is not None or arm.baseline is not None):
        raise StudyError(f"{where}: retrain.from: inherit needs the supernet the arm searches, "
                         "but the arm gives its genotype (set retrain.from: scratch)")
    if start == "scratch" and study.retrain.epochs == 0 and arm.retrain and arm.weights is None:
        raise StudyError(f"{where}: retrain.epochs: 0 would test an untrained network (the arm "
                         f"starts from scratch: {study.search_space.name!r} cannot inherit or "
                         "retrain.from says so)")


def checked_weights(arm: Arm, genotype: str, source: str) -> str:
    """The baseline's weights file (relative to the study file, else the working folder),
    loaded into its network once here so that a wrong file stops the study in one line."""
    where = f"{source}: baselines: {arm.name}: weights"
    path = genotype_path(str(arm.weights), source, where)
    parsed = Genotype.from_json(genotype, "baseline genotype")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
        network = get_space(parsed.space).build_derived(parsed, {}, 1)
        network.load_state_dict(state, strict=True)
    except Exception as error:  # unpickling and shape errors come in several types
        first = (str(error).strip().splitlines() or [type(error).__name__])[0][:200]
        raise StudyError(f"{where}: {path} does not load into {arm.baseline} ({first})") from None
    return str(path.resolve())


def load_arm_genotype(arm: Arm, study: Study, source: str,
                      tracking_uri: str | None) -> Genotype:
    """The arm's genotype file (relative to the study file, else the working folder) or MLflow
    artifact (`runs:/<run id>/genotype.json`); it must belong to the arm's search space."""
    where = f"{source}: arm '{arm.name}': genotype"
    reference = str(arm.genotype)
    try:
        if reference.startswith(("runs:/", "mlflow-artifacts:/", "models:/")):
            genotype = Genotype.load(download_artifact(reference, tracking_uri, where))
        else:
            genotype = Genotype.load(genotype_path(reference, source, where))
    except GenotypeError as error:
        raise StudyError(f"{where}: {error}") from None
    except UnicodeDecodeError:  # a binary file (not JSON text)
        raise StudyError(f"{where}: {reference}: not a JSON text file") from None
    if genotype.space != study.search_space.name:
        raise StudyError(f"{where}: {reference} is a {genotype.space!r} genotype but the arm's "
                         f"search space is {study.search_space.name!r}")
    return genotype


def genotype_path(reference: str, source: str, where: str) -> Path:
    candidates = [Path(source).parent / reference, Path(reference)]
    found = next((path for path in candidates if path.is_file()), None)
    if found is None:
        raise StudyError(f"{where}: file not found: {reference}")
    return found


def download_artifact(reference: str, tracking_uri: str | None, where: str) -> Path:
    import mlflow.artifacts

    try:
        folder = tempfile.mkdtemp(prefix="genotype-")
        return Path(mlflow.artifacts.download_artifacts(
            artifact_uri=reference, dst_path=folder, tracking_uri=tracking_uri))
    except Exception as error:  # MLflow raises several types for a missing run or file
        first = str(error).splitlines()[0] if str(error) else type(error).__name__
        raise StudyError(f"{where}: cannot fetch {reference} ({first})") from None
