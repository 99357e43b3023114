"""MLflow for the trials: the tracker (runs, outbox and on-disk spool for a
server that is down), run names and params, node placement tags, and what a run logs to be
rerun (config, versions, data manifest).

`__all__` is what other packages may import; the modules are private to it."""

from typing import TYPE_CHECKING

from trainables import lazy_face

if TYPE_CHECKING:  # imported when first used (`lazy_face`)
    from trainables.tracking.display import (
        FILTER_KEYS,
        RENAME_TAG,
        logged_params,
        run_name,
        varying_keys,
        with_arch,
    )
    from trainables.tracking.outbox import Outbox, Patience
    from trainables.tracking.placement import node_tags
    from trainables.tracking.provenance import (
        COMMIT_TAG,
        DATA_TAG,
        DIRTY_TAG,
        PACKAGE_SET_TAG,
        dataset_label,
        package_set,
        parent_artifacts,
        provenance_tags,
        source_state,
    )
    from trainables.tracking.reproducibility import (
        CONFIG_FILE,
        RECORD_FILE,
        data_manifest,
        invocation_tags,
        machine_record,
        package_versions,
        record_texts,
    )
    from trainables.tracking.runs import CACHED_FROM, Tracker, artifact_run
    from trainables.tracking.spool import Spool, spool_folders, spool_root
    from trainables.tracking.store import (
        artifact_root_for,
        default_tracking_uri,
        prepare_local_store,
        store_exists,
    )

__all__ = [
    "CACHED_FROM",
    "artifact_run",
    "COMMIT_TAG",
    "CONFIG_FILE",
    "DATA_TAG",
    "DIRTY_TAG",
    "PACKAGE_SET_TAG",
    "FILTER_KEYS",
    "Outbox",
    "Patience",
    "Spool",
    "spool_folders",
    "spool_root",
    "RECORD_FILE",
    "RENAME_TAG",
    "Tracker",
    "artifact_root_for",
    "data_manifest",
    "invocation_tags",
    "machine_record",
    "package_set",
    "package_versions",
    "parent_artifacts",
    "provenance_tags",
    "dataset_label",
    "default_tracking_uri",
    "logged_params",
    "node_tags",
    "prepare_local_store",
    "store_exists",
    "record_texts",
    "run_name",
    "source_state",
    "varying_keys",
    "with_arch",
]

__getattr__ = lazy_face(__name__)
