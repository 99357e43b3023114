"""What produced a study's runs, recorded so that a rerun can say what differs: tags on the
parent run and on every trial run (the code's commit and whether the checkout had changes,
a hash of the installed package set, a hash of each dataset's manifest), and, on the parent
run, the manifests themselves, the package list and, from a checkout with changes, their
diff."""

from __future__ import annotations

import hashlib
import json
import re
from functools import lru_cache
from importlib import metadata
from typing import Any

from trainables.tracking.reproducibility import git, machine_record, package_versions
from trainables.tracking.reproducibility import source_commit as _source_commit

PACKAGE_SET_TAG = "package_set"
DATA_TAG = "data."  # + the dataset's name: the hash of its manifest
COMMIT_TAG, DIRTY_TAG = "git.commit", "git.dirty"
FOLDER = "provenance"  # the parent run's artifacts


@lru_cache(maxsize=1)
def installed_packages() -> tuple[str, ...]:
    """`name==version` of every installed distribution, sorted (names lower-cased)."""
    found = {f"{dist.metadata['Name'].lower()}=={dist.version}"
             for dist in metadata.distributions() if dist.metadata["Name"]}
    return tuple(sorted(found))


def package_set() -> str:
    """16 hex digits over `installed_packages()`: equal when every version is."""
    return hashlib.sha256("\n".join(installed_packages()).encode()).hexdigest()[:16]


def source_state() -> dict[str, str]:
    """The commit and dirty flag of this code as tags ('' outside a git checkout)."""
    source = _source_commit() or {}
    return {COMMIT_TAG: str(source.get("commit", "")),
            DIRTY_TAG: str(source.get("dirty", "")).lower()}


def dataset_label(name: str) -> str:
    """A dataset's name (or folder path) as a tag key and file name: `set12`, and
    `tmp_my-images` for `/tmp/my-images`."""
    return re.sub(r"[^A-Za-z0-9_.=+-]+", "_", name).strip("_.")[-200:] or "_"


def provenance_tags(manifest_hashes: dict[str, str]) -> dict[str, str]:
    """The tags every run of a study carries (`manifest_hashes`: dataset -> hash)."""
    return {**source_state(), PACKAGE_SET_TAG: package_set(),
            **{f"{DATA_TAG}{dataset_label(name)}": digest
               for name, digest in manifest_hashes.items()}}


def tree_diff() -> str | None:
    """`git diff HEAD` of the tracked files when the checkout has changes, else None."""
    source = _source_commit()
    if not source or not source["dirty"]:
        return None
    return git("diff", "HEAD", "--no-color") or None


def parent_artifacts(manifests: dict[str, dict[str, str]]) -> dict[str, str]:
    """Artifact path -> text of what the parent run keeps: the record its trials keep (key
    versions, Python, machine, commit) with the whole package list, each dataset's manifest
    and, from a checkout with changes, the diff."""
    record: dict[str, Any] = {"packages": package_versions(), PACKAGE_SET_TAG: package_set(),
                              "installed": list(installed_packages()),
                              "git": _source_commit(), "machine": machine_record()}
    texts = {f"{FOLDER}/reproducibility.json": json.dumps(record, indent=2) + "\n"}
    for name, files in manifests.items():
        texts[f"{FOLDER}/datasets/{dataset_label(name)}.json"] = json.dumps(files,
                                                                               indent=1) + "\n"
    diff = tree_diff()
    if diff is not None:
        texts[f"{FOLDER}/git.diff"] = diff + "\n"
    return texts
