"""Provenance of a study's runs: the package set's hash, each dataset's manifest and, from a
checkout with uncommitted changes, their diff (trainables.tracking, trainables.data)."""

from __future__ import annotations

import hashlib
import json
import subprocess
from importlib import metadata
from pathlib import Path

import pytest
from PIL import Image

import trainables.tracking.reproducibility as reproducibility
from orchestrator.study.reading import validate
from trainables.data import dataset_manifests, manifest_hash
from trainables.tracking import package_set, parent_artifacts, provenance_tags


def git(folder: Path, *args: str) -> None:
    subprocess.run(["git", "-C", str(folder), *args], check=True, capture_output=True)


@pytest.fixture
def checkout(tmp_path, monkeypatch) -> Path:
    """A git checkout with one committed file, standing in for this code's."""
    folder = tmp_path / "code"
    folder.mkdir()
    git(folder, "init", "-q")
    (folder / "model.py").write_text("width = 4\n")
    git(folder, "add", "model.py")
    git(folder, "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "one")
    monkeypatch.setattr(reproducibility, "SOURCE", folder)
    reproducibility.source_commit.cache_clear()
    yield folder
    reproducibility.source_commit.cache_clear()


def test_a_clean_checkout_logs_no_diff_and_a_dirty_one_its_changes(checkout):
    head = subprocess.run(["git", "-C", str(checkout), "rev-parse", "HEAD"], capture_output=True,
                          text=True).stdout.strip()
    assert provenance_tags({})["git.commit"] == head
    assert provenance_tags({})["git.dirty"] == "false"
    assert "provenance/git.diff" not in parent_artifacts({})
    (checkout / "model.py").write_text("width = 8\n")
    reproducibility.source_commit.cache_clear()
    assert provenance_tags({})["git.dirty"] == "true"
    diff = parent_artifacts({})["provenance/git.diff"]
    assert "-width = 4" in diff and "+width = 8" in diff


def test_the_package_set_lists_every_installed_distribution():
    record = json.loads(parent_artifacts({})["provenance/reproducibility.json"])
    assert f"torch=={metadata.version('torch')}" in record["installed"]
    assert f"pyyaml=={metadata.version('pyyaml')}" in record["installed"]
    assert "mlflow==" + metadata.version("mlflow") in record["installed"]
    assert record["package_set"] == package_set() == provenance_tags({})["package_set"]


def test_a_dataset_manifest_names_its_files_with_their_sha256(tmp_path):
    """Two PNG files in a folder dataset: the manifest holds their names and the sha256 of
    their bytes (computed here with hashlib); renaming a file changes the hash."""
    folder = tmp_path / "mine"
    folder.mkdir()
    for name, value in (("a", 10), ("b", 200)):
        Image.new("L", (40, 40), value).save(folder / f"{name}.png")
    study = validate({"name": "m", "search_space": {"name": "dncnn"},
                      "data": {"train": str(folder), "test": [str(folder)],
                               "patch_size": 16}})
    manifest = dataset_manifests(study)[str(folder)]
    assert manifest == {f"{name}.png": hashlib.sha256((folder / f"{name}.png").read_bytes())
                        .hexdigest() for name in ("a", "b")}
    before = manifest_hash(manifest)
    (folder / "b.png").rename(folder / "c.png")
    from trainables.data.loading import _load
    _load.cache_clear()
    assert manifest_hash(dataset_manifests(study)[str(folder)]) != before


def test_a_dataset_named_by_its_folder_gets_a_safe_tag_and_file_name():
    tags = provenance_tags({"/data/my images/set": "0123"})
    assert tags["data.data_my_images_set"] == "0123"
    assert "provenance/datasets/data_my_images_set.json" in parent_artifacts(
        {"/data/my images/set": {"a.png": "ff"}})
