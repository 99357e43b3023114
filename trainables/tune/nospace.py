"""A trial that cannot write for lack of space (a checkpoint into the study's storage, an
artifact, a plot): it says where and how much is free, and waits to be stopped.

Failing the trial would end its unit for good (a resumed study does not rerun failed
trials), though nothing is wrong with it but the disk. Instead the trial tags its run with
the reason and reports it to Tune (`NO_SPACE`, no checkpoint); the driver stops the whole
study as a stop signal does (`orchestrator.run.signals`), and `--resume`, once space is
freed, continues the trial from its last checkpoint. That checkpoint is intact: Tune
registers a checkpoint only after every file of it is in the storage, so a copy cut short
by the full disk is never the one a resumed trial loads (the next checkpoint of the same
index overwrites it). A trial whose driver does not stop it (one run outside a study) fails
with the reason after `STOP_WAIT_S`.
"""

from __future__ import annotations

import errno
import shutil
import time
from pathlib import Path

from ray import tune

NO_SPACE = "no_space"  # the key of the result that says so
NO_SPACE_ERRNOS = (errno.ENOSPC, errno.EDQUOT)
STOP_WAIT_S = 300.0


class NoSpace(OSError):
    """A write failed for lack of space; the message names the path and the free space."""

    def __init__(self, message: str):
        super().__init__(message)
        self.errno = errno.ENOSPC


def out_of_space(error: BaseException | None) -> bool:
    """Did `error` (or what caused it) fail for lack of space? pyarrow, which copies Tune's
    checkpoints into the storage, raises an OSError whose errno is that of the write."""
    while error is not None:
        if isinstance(error, OSError) and error.errno in NO_SPACE_ERRNOS:
            return True
        if "No space left on device" in str(error):
            return True
        error = error.__cause__ or error.__context__
    return False


def free_space(path: str | Path) -> str:
    folder = Path(path)
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent
    try:
        return f"{shutil.disk_usage(folder).free / 2**20:.1f} MiB free"
    except OSError:
        return "free space unknown"


def no_space(error: BaseException, path: str | Path | None = None, what: str = "") -> NoSpace:
    """The one-line reason: what was written where (`path`, else the error's own file name,
    else the trial's folder) and the space left there."""
    where = path or getattr(error, "filename", None) or trial_folder()
    what = f"{what} in " if what else ""
    return NoSpace(f"no space left on the device writing {what}{where} ({free_space(where)})")


def trial_folder() -> str:
    """The trial's folder in the study's storage (where its checkpoints go)."""
    try:
        storage = tune.get_context().get_storage()
        return storage.trial_fs_path
    except Exception:  # noqa: BLE001  (outside a Tune trial)
        return "the trial's folder"


def wait_to_be_stopped(reason: NoSpace) -> None:
    """Tell the driver (a result without a checkpoint), then wait for it to stop the study
    (which ends this worker); return when it does not."""
    tune.report({NO_SPACE: str(reason)})
    deadline = time.monotonic() + STOP_WAIT_S
    while time.monotonic() < deadline:
        time.sleep(1.0)
