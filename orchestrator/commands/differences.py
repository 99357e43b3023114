"""What differs between what produced a run and what a rerun of it would run with: the code's
commit and uncommitted changes, the installed package set, each dataset's files and the
evaluation protocol, one line each (`rerun` prints them before it starts; `--strict` refuses
to start when there is any)."""

from __future__ import annotations

from typing import Any

from mlflow.entities import Run

from studyspec.schema import Study
from trainables.data import dataset_manifests, manifest_hash
from trainables.loops import protocol_hash
from trainables.tracking import (
    COMMIT_TAG,
    DATA_TAG,
    DIRTY_TAG,
    PACKAGE_SET_TAG,
    dataset_label,
    package_set,
    source_state,
)


def recorded_source(run: Run, record: dict[str, Any] | None) -> tuple[str, str]:
    """(commit, dirty) the run recorded: its tags, else (older runs) its reproducibility.json."""
    tags = run.data.tags
    if tags.get(COMMIT_TAG):
        return tags[COMMIT_TAG], tags.get(DIRTY_TAG, "")
    git = (record or {}).get("git") or {}
    return str(git.get("commit", "")), str(git.get("dirty", "")).lower()


def state(commit: str, dirty: str) -> str:
    if not commit:
        return "not a git checkout"
    return commit[:12] + {"true": " with uncommitted changes", "false": ""}.get(dirty, "")


def differences(run: Run, record: dict[str, Any] | None, study: Study) -> list[str]:
    """One line per difference between `run` and this checkout, packages and data (read for
    `study`, the rerun's); what the run did not record is not compared."""
    lines = []
    then, now = recorded_source(run, record), source_state()
    if then[0] and then != (now[COMMIT_TAG], now[DIRTY_TAG]):
        lines.append(f"code: the run ran {state(*then)}, this is "
                     f"{state(now[COMMIT_TAG], now[DIRTY_TAG])}")
    tags = run.data.tags
    if tags.get(PACKAGE_SET_TAG) and tags[PACKAGE_SET_TAG] != package_set():
        lines.append(f"packages: the run's package set {tags[PACKAGE_SET_TAG]}, this one "
                     f"{package_set()} (its parent run's provenance/reproducibility.json "
                     "lists them)")
    hashes = {dataset_label(name): manifest_hash(files)
              for name, files in dataset_manifests(study).items()}
    for key, digest in sorted(tags.items()):
        name = key.removeprefix(DATA_TAG)
        if key.startswith(DATA_TAG) and name in hashes and hashes[name] != digest:
            lines.append(f"data: dataset '{name}' had manifest {digest}, now {hashes[name]} "
                         "(files added, removed or changed)")
    if tags.get("eval_protocol") and tags["eval_protocol"] != protocol_hash():
        lines.append(f"evaluation: the run's protocol {tags['eval_protocol']}, this one "
                     f"{protocol_hash()}")
    return lines
