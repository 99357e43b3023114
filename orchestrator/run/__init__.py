"""Running a study: the parent MLflow run, one Ray Tune experiment fed by the
study searcher, per-arm ASHA, de-duplicated retraining, storage, memory checks against the
cluster, and what the console shows while it runs.

`__all__` is what other packages may import; the modules are private to it."""

from typing import TYPE_CHECKING

from trainables import lazy_face

if TYPE_CHECKING:  # imported when first used (`lazy_face`)
    from orchestrator.run.estimate import study_cost
    from orchestrator.run.memory import checked_memory, checked_weights
    from orchestrator.run.preparing import (
        PreparedArms,
        ResourceError,
        RunOptions,
        TrialsFailed,
        prepare_arms,
        resolve_uri,
    )
    from orchestrator.run.runner import LOOPBACK, keep_on_loopback, run_study, start_ray
    from orchestrator.run.signals import StudyStopped
    from orchestrator.run.storage import SPOOL_FOLDER, StorageError
    from orchestrator.run.summary import plan_text

__all__ = [
    "LOOPBACK",
    "PreparedArms",
    "SPOOL_FOLDER",
    "ResourceError",
    "RunOptions",
    "StorageError",
    "StudyStopped",
    "TrialsFailed",
    "checked_memory",
    "checked_weights",
    "keep_on_loopback",
    "plan_text",
    "prepare_arms",
    "resolve_uri",
    "run_study",
    "start_ray",
    "study_cost",
]

__getattr__ = lazy_face(__name__)
