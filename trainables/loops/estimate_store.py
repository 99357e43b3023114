"""Step estimates kept on disk between commands, per code and (for times) per machine.

A dry-run builds, counts (`memory_study`) and times (`timing`) every distinct network of
a study; for a large study that is most of its answer time (the ablation study: 86 meta
passes, 20 timed networks). A value is stored under the key of what it depends on (the
network's space and options or genotype, the step's shape) together with a fingerprint
of the code that builds and trains networks (`searchspaces/`, `trainables/loops/` and
torch's version), so that a change to either computes it again; times also carry the
machine (CPU model and count, GPU name, threads) and are stored relative to
`reference_seconds()` measured with them, so that a reading on a loaded machine scales
with the load (`timing.reference_seconds`).

The store is a folder (default `~/.cache/nas-orchestrator`; the environment variable
`NAS_ESTIMATE_STORE` names another, `off` keeps nothing), one JSON file per kind of
value, written whole and atomically: two commands writing at once lose at most the
other's new entries, never the file.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import platform
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

ENV = "NAS_ESTIMATE_STORE"
DEFAULT = Path.home() / ".cache" / "nas-orchestrator"
CODE = ("searchspaces", "trainables/loops")  # what decides a network and its step


def folder() -> Path | None:
    chosen = os.environ.get(ENV)
    if chosen == "off":
        return None
    return Path(chosen) if chosen else DEFAULT


@functools.cache
def code_fingerprint() -> str:
    """A hash of the sources that build and train networks, and torch's version."""
    root = Path(__file__).resolve().parents[2]
    digest = hashlib.sha256(torch.__version__.encode())
    for package in CODE:
        for path in sorted((root / package).rglob("*.py")):
            digest.update(str(path.relative_to(root)).encode())
            digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


@functools.cache
def machine() -> str:
    """CPU model and count, and the first GPU's name when torch sees one."""
    model = platform.processor()
    try:
        with open("/proc/cpuinfo") as info:
            model = next((line.split(":", 1)[1].strip() for line in info
                          if line.startswith("model name")), model)
    except OSError:
        pass
    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "no gpu"
    return f"{model} x {os.cpu_count()}; {gpu}"


def entry_key(key: Any, per_machine: bool) -> str:
    text = json.dumps([code_fingerprint(), machine() if per_machine else "", key],
                      sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:32]


def read(path: Path) -> dict[str, Any]:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return {}


def write(path: Path, entries: dict[str, Any]) -> None:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile("w", dir=path.parent, delete=False,
                                         suffix=".tmp") as handle:
            json.dump(entries, handle)
        os.replace(handle.name, path)
    except OSError:  # a read-only home: estimates are only not kept
        pass


def recalled(kind: str, key: Any, compute: Callable[[], Any], per_machine: bool = False) -> Any:
    """The stored value of `key` (JSON data), else `compute()`, stored."""
    where = folder()
    if where is None:
        return compute()
    path, name = where / f"{kind}.json", entry_key(key, per_machine)
    entries = read(path)
    if name in entries:
        return entries[name]
    value = compute()
    entries = read(path)  # what another command stored meanwhile
    entries[name] = value
    write(path, entries)
    return value
