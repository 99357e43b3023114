"""What a trial run logs to be rerun: `config.json` (the trial's config and its resolved study,
which `python -m orchestrator rerun` starts from) and `reproducibility.json` (package versions,
Python, device, seeds, the git commit of this code when it is a git checkout, and a hash of
the data the trial was given)."""

from __future__ import annotations

import hashlib
import json
import os
import platform
import subprocess
from collections.abc import Iterable
from dataclasses import fields, is_dataclass
from functools import lru_cache
from importlib import metadata
from pathlib import Path
from typing import Any

import torch

from trainables.data import NamedImage

PACKAGES = ("torch", "ray", "mlflow", "optuna", "numpy", "pydantic", "scikit-image")
CONFIG_FILE = "config.json"
RECORD_FILE = "reproducibility.json"
SOURCE = Path(__file__).resolve().parents[2]  # the project's checkout


def package_versions() -> dict[str, str | None]:
    versions: dict[str, str | None] = {}
    for name in PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    return versions


def git(*args: str) -> str | None:
    try:
        done = subprocess.run(["git", "-C", str(SOURCE), *args], capture_output=True,
                              text=True, timeout=10, check=True)
    except (OSError, subprocess.SubprocessError):
        return None
    return done.stdout.strip()


@lru_cache(maxsize=1)
def source_commit() -> dict[str, Any] | None:
    """The commit of the code a trial runs, and whether the checkout had changes; None
    outside a git checkout (an installed wheel). Read once per worker process."""
    commit = git("rev-parse", "HEAD")
    if not commit:
        return None
    changes = git("status", "--porcelain", "--untracked-files=no")
    return {"commit": commit, "dirty": bool(changes)}


def images_of(data: Any) -> Iterable[tuple[str, NamedImage]]:
    """(role, image) of every image a stage's data bundle holds (nested dataclasses, lists and
    dicts of NamedImage), in a fixed order."""
    if isinstance(data, NamedImage):
        yield "", data
    elif is_dataclass(data):
        for field in fields(data):
            for role, image in images_of(getattr(data, field.name)):
                yield f"{field.name}/{role}".rstrip("/"), image
    elif isinstance(data, dict):
        for key in sorted(data):
            for role, image in images_of(data[key]):
                yield f"{key}/{role}".rstrip("/"), image
    elif isinstance(data, (list, tuple)):
        for item in data:
            yield from images_of(item)


def data_manifest(data: Any) -> str:
    """sha256 (16 hex) over every image's role, name, source, shape and pixels: the same
    files, split the same way, give the same hash."""
    digest = hashlib.sha256()
    for role, image in images_of(data):
        digest.update(f"{role}|{image.name}|{Path(image.source).name}|"
                      f"{image.pixels.shape}\n".encode())
        digest.update(image.pixels.tobytes())
        if image.noisy is not None:  # a real-noise pair
            digest.update(image.noisy.tobytes())
    return digest.hexdigest()[:16]


def device_record(study: dict[str, Any], phase: str) -> dict[str, Any]:
    gpu_share = study.get("resources", {}).get(phase, {}).get("gpu", 0)
    cuda = torch.cuda.is_available() and gpu_share > 0
    return {"type": "cuda" if cuda else "cpu",
            "name": torch.cuda.get_device_name(0) if cuda else platform.processor() or
            platform.machine(), "torch_threads": torch.get_num_threads(),
            "precision": study.get("precision", "fp32")}


def reproducibility_record(config: dict[str, Any], study: dict[str, Any], phase: str,
                           data_hash: str | None, data_seed: int | None) -> dict[str, Any]:
    """`data_seed` is the arm's study seed, which split the data (a trial's study carries
    the trial's seed instead)."""
    return {"python": platform.python_version(), "platform": platform.platform(),
            "packages": package_versions(), "device": device_record(study, phase),
            "seeds": {"trial": config.get("seed", study.get("seed")), "data_split": data_seed},
            "git": source_commit(), "data_manifest": data_hash}


def machine_record() -> dict[str, Any]:
    return {"platform": platform.platform(), "processor": platform.processor() or
            platform.machine(), "cpus": os.cpu_count(), "python": platform.python_version(),
            "cuda_devices": torch.cuda.device_count() if torch.cuda.is_available() else 0}


def invocation_tags(arguments: tuple[str, ...]) -> dict[str, str]:
    """Tags of a study's parent run: the command that started it, the code's commit and
    whether the checkout had changes, and the machine it ran from."""
    source = source_commit() or {}
    command = " ".join(["python -m orchestrator", *arguments])[:5000]
    return {"command": command, "git.commit": str(source.get("commit", "")),
            "git.dirty": str(source.get("dirty", "")).lower(),
            "machine": json.dumps(machine_record())}


def rerun_config(config: dict[str, Any], study: dict[str, Any]) -> dict[str, Any]:
    """The trial's Tune config (arm, seed, tuned values, genotype and noise of a retrain) and
    the study it ran, resolved (arm overrides, seed and Optuna picks applied)."""
    return {"trial": config, "study": study}


def record_texts(config: dict[str, Any], study: dict[str, Any], phase: str,
                 data_hash: str | None = None, data_seed: int | None = None) -> dict[str, str]:
    """Artifact file -> text of both files."""
    record = reproducibility_record(config, study, phase, data_hash, data_seed)
    return {CONFIG_FILE: json.dumps(rerun_config(config, study), indent=2, default=str) + "\n",
            RECORD_FILE: json.dumps(record, indent=2, default=str) + "\n"}
