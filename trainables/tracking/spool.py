"""Writes to MLflow that could not be delivered yet, kept in order on local disk.

One folder per study (named after its parent run) holds, per run, the run's
pending writes as JSON lines (`<run>.pending.jsonl`, oldest first), the files of
pending artifacts, and the writes the server refused (`<run>.refused.jsonl`).
Trials and the driver of one machine share the folder, so the driver sends (or
counts) what its trials left behind, and a restarted trial finds its own.
A run's file is locked while it is appended to or sent, so two processes never
send one write twice.
"""

from __future__ import annotations

import fcntl
import json
import os
import shutil
import uuid
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

SPOOL_ENV = "NAS_TRACKING_SPOOL"  # where the study folders live, if set (it wins)
PENDING, REFUSED = ".pending.jsonl", ".refused.jsonl"
URI_FILE = "tracking_uri.txt"  # the server a folder's writes are for (read by `sync`)
Record = dict[str, Any]  # {"metrics"|"params"|"tags": [...]}, {"artifact", "local"}, {"status"}


def spool_root(default: str | Path | None = None) -> Path:
    """`$NAS_TRACKING_SPOOL` if set, else `default` (a study's: in its storage, which every
    node of a cluster sees), else the user's cache."""
    configured = os.environ.get(SPOOL_ENV)
    if configured:
        return Path(configured)
    return Path(default) if default else Path.home() / ".cache/nas-denoise/tracking-spool"


def read_lines(path: Path) -> list[Record]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


class Spool:
    """The pending writes of the runs of one study: a folder, a file per run."""

    def __init__(self, folder: Path):
        self.folder = folder

    def file(self, run_id: str, suffix: str = PENDING) -> Path:
        return self.folder / f"{run_id}{suffix}"

    def has(self, run_id: str) -> bool:
        return self.file(run_id).exists()

    @contextmanager
    def locked(self, run_id: str) -> Iterator[None]:
        self.folder.mkdir(parents=True, exist_ok=True)
        with open(self.folder / f"{run_id}.lock", "a") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)  # released when the handle closes
            yield

    def note_uri(self, uri: str) -> None:
        """Record the server this folder's writes are for (once)."""
        path = self.folder / URI_FILE
        if not path.exists():
            self.folder.mkdir(parents=True, exist_ok=True)
            path.write_text(uri + "\n")

    def uri(self) -> str | None:
        path = self.folder / URI_FILE
        return path.read_text().strip() if path.exists() else None

    def append(self, run_id: str, record: Record) -> None:
        """Queue `record` after the run's other pending writes; an artifact's file is copied
        into the spool (the caller's copy may be temporary)."""
        with self.locked(run_id):
            if "local" in record:
                kept = self.folder / run_id / uuid.uuid4().hex / Path(record["local"]).name
                kept.parent.mkdir(parents=True)
                shutil.copyfile(record["local"], kept)
                record = {**record, "local": str(kept)}
            with self.file(run_id).open("a") as out:
                out.write(json.dumps(record) + "\n")

    def pending(self, run_id: str) -> list[Record]:
        return read_lines(self.file(run_id))

    def keep(self, run_id: str, records: list[Record]) -> None:
        """Replace the run's pending writes by `records` (atomically: after a crash, what was
        sent is not sent again)."""
        path = self.file(run_id)
        if not records:
            path.unlink(missing_ok=True)
            return
        partial = path.with_suffix(".partial")
        partial.write_text("".join(json.dumps(record) + "\n" for record in records))
        os.replace(partial, path)

    def refuse(self, run_id: str, records: list[Record], reason: str) -> None:
        """Set aside writes the server answered with an error (sending them again would not
        help); they are counted as undelivered."""
        with self.file(run_id, REFUSED).open("a") as out:
            for record in records:
                out.write(json.dumps({**record, "reason": reason}) + "\n")

    def sent(self, records: Iterable[Record]) -> None:
        for record in records:
            if "local" in record:  # the artifact's own folder in the spool
                shutil.rmtree(Path(record["local"]).parent, ignore_errors=True)

    def last_step(self, run_id: str, key: str) -> int:
        steps = [m[3] for r in self.pending(run_id) for m in r.get("metrics", ()) if m[0] == key]
        return max(steps, default=-1)

    def param_keys(self, run_id: str) -> set[str]:
        return {key for record in self.pending(run_id) for key, _ in record.get("params", ())}

    def undelivered(self, run_ids: Iterable[str]) -> tuple[int, int]:
        """(metric values, writes) pending or refused for these runs."""
        records = [record for run_id in run_ids for suffix in (PENDING, REFUSED)
                   for record in read_lines(self.file(run_id, suffix))]
        return sum(len(record.get("metrics", ())) for record in records), len(records)

    def runs(self) -> list[str]:
        """Runs with pending or refused writes."""
        names = [path.name for path in self.folder.glob("*.jsonl")]
        return sorted({name.removesuffix(PENDING).removesuffix(REFUSED) for name in names})

    def remove_if_empty(self) -> None:
        if self.folder.exists() and not self.runs():
            shutil.rmtree(self.folder, ignore_errors=True)


def spool_folders(roots: Iterable[Path]) -> list[Spool]:
    """The study folders under these roots that hold writes (pending or refused)."""
    found = []
    for root in roots:
        if root.is_dir():
            found += [Spool(folder) for folder in sorted(root.iterdir()) if folder.is_dir()]
    return [spool for spool in found if spool.runs()]
