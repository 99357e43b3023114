"""Each dataset a study reads, as a manifest: its images' file names and the sha256 of each
file's bytes (an embedded photograph, which has no file: of its pixels; a real-noise pair: of
both images). The same files give the same manifest wherever they lie; its hash, a tag on
every run of the study, says whether a rerun reads the data its run read."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from studyspec.schema import Study
from trainables.data.images import NamedImage
from trainables.data.loading import load_named


def image_digest(image: NamedImage) -> str:
    digest = hashlib.sha256()
    source = Path(image.source)
    if source.is_file():
        digest.update(source.read_bytes())
    else:  # skimage.data.<name>
        digest.update(image.pixels.tobytes())
    if image.noisy is not None:
        digest.update(image.noisy.tobytes())
    return digest.hexdigest()


def dataset_manifests(study: Study) -> dict[str, dict[str, str]]:
    """dataset name -> {file name (its path below the dataset's folder): sha256}, for the
    training set, every test set and every monitored set of the study (an embedded set lists
    the photographs of both its roles)."""
    data = study.data
    wanted = [(data.train, "train"), *((name, "test") for name in data.test),
              *((name, "test") for name in study.search.monitor or ())]
    manifests: dict[str, dict[str, str]] = {}
    for name, role in wanted:
        files = manifests.setdefault(name, {})
        for image in load_named(name, role, data.root, data.color):
            files[f"{role}/{image.name}" if name == "embedded" else
                  Path(image.source).name] = image_digest(image)
    return {name: dict(sorted(files.items())) for name, files in manifests.items()}


def manifest_hash(files: dict[str, str]) -> str:
    """16 hex digits over the manifest's names and digests."""
    return hashlib.sha256(json.dumps(files, sort_keys=True).encode()).hexdigest()[:16]
