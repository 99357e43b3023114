"""`python -m orchestrator sync`: send what studies left in their tracking spools.

A study whose tracking server did not answer to its end keeps the unsent writes on disk
(`trainables.tracking`), per study in `<storage>/<study>/tracking-spool/<parent run>/`
(or `$NAS_TRACKING_SPOOL`, or the user's cache for remote storage), with the server's
URI beside them. `sync` sends them in order, once the server answers, and sets the parent
run's `tracking.undelivered_metrics` tag to what is left; `report` does the same for the
study it rebuilds before it reads the runs.
"""

from __future__ import annotations

import time
from pathlib import Path

from mlflow.tracking import MlflowClient

from orchestrator.run import SPOOL_FOLDER
from trainables.tracking import Outbox, Patience, Spool, spool_folders, spool_root

UNDELIVERED_TAG = "tracking.undelivered_metrics"


def spool_roots(storage: str | None) -> list[Path]:
    """Where studies keep their spools: `$NAS_TRACKING_SPOOL` or the user's cache, and every
    study folder of a local `storage`."""
    roots = [spool_root()]
    if storage is not None and "://" not in storage and Path(storage).is_dir():
        roots += sorted(Path(storage).resolve().glob(f"*/{SPOOL_FOLDER}"))
    return list(dict.fromkeys(roots))


def sync_folder(spool: Spool, tracking_uri: str | None, wait: float) -> str:
    """Send one study folder's writes (waiting up to `wait` s for the server); one line."""
    uri = tracking_uri or spool.uri()
    if uri is None:
        return f"{spool.folder}: no tracking URI recorded (pass --tracking-uri)"
    outbox = Outbox(MlflowClient(uri), uri, None, Patience(finish=wait, retry_every=2.0),
                    spool.folder.parent)
    runs = spool.runs()
    queued, queued_writes = spool.undelivered(runs)
    outbox.drain(spool, runs, time.monotonic() + wait)
    metrics, writes = spool.undelivered(runs)
    if writes < queued_writes:  # the server answered: the parent's count is current again
        outbox.write(spool.folder.name, {"tags": [[UNDELIVERED_TAG, str(metrics)]]})
    spool.remove_if_empty()
    delivered = queued - metrics
    left = f"; {metrics} metric values in {writes} writes left in {spool.folder}" if writes \
        else ""
    return f"{uri}: delivered {delivered} metric values of study run {spool.folder.name}{left}"


def sync_command(storage: str | None, tracking_uri: str | None, wait: float = 30.0,
                 parent: str | None = None) -> tuple[list[str], bool]:
    """Lines, and whether everything was delivered; `parent`: only that study's folder."""
    lines, complete = [], True
    for spool in spool_folders(spool_roots(storage)):
        if parent is not None and spool.folder.name != parent:
            continue
        lines.append(sync_folder(spool, tracking_uri, wait))
        complete &= not spool.runs()
    return lines or ["nothing to send"], complete

