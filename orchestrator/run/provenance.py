"""What a study's runs record about what produced them (trainables.tracking's provenance
tags), gathered once in the driver: the manifest of every dataset its arms read, their
hashes, and the study file's hash."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from studyspec.schema import Study
from trainables.data import dataset_manifests, manifest_hash
from trainables.tracking import parent_artifacts, provenance_tags

STUDY_FILE_TAG = "study_file.sha256"


@dataclass(frozen=True)
class Provenance:
    trial_tags: dict[str, str]  # on every run of the study
    parent_tags: dict[str, str]  # besides, on the parent: the study file's hash
    parent_files: dict[str, str]  # artifact path -> text, on the parent


NONE = Provenance({}, {}, {})  # a parent opened without it (tests)


def file_hash(source: str) -> str | None:
    path = Path(source)
    return hashlib.sha256(path.read_bytes()).hexdigest()[:16] if path.is_file() else None


def study_provenance(studies: Iterable[Study], source: str) -> Provenance:
    """`studies`: every arm's resolved study (arms may read other data)."""
    manifests: dict[str, dict[str, str]] = {}
    for study in studies:
        for name, files in dataset_manifests(study).items():
            manifests.setdefault(name, {}).update(files)
    tags = provenance_tags({name: manifest_hash(files) for name, files in manifests.items()})
    study_file = file_hash(source)
    return Provenance(tags, {STUDY_FILE_TAG: study_file} if study_file else {},
                      parent_artifacts(manifests))
