"""A study's results, rebuilt from MLflow alone: the papers' tables (mean
+- std over seeds), bar charts, the Pareto front and Optuna's pictures, as parent-run
artifacts.

`__all__` is what other packages may import; the modules are private to it."""

from typing import TYPE_CHECKING

from trainables import lazy_face

if TYPE_CHECKING:  # imported when first used (`lazy_face`)
    from orchestrator.results.description import NOTE_TAG
    from orchestrator.results.report import (
        ReportError,
        all_experiment_ids,
        resolve_parent,
        run_if_exists,
        study_run_in,
        write_report,
    )

__all__ = [
    "NOTE_TAG",
    "ReportError",
    "all_experiment_ids",
    "resolve_parent",
    "run_if_exists",
    "study_run_in",
    "write_report",
]

__getattr__ = lazy_face(__name__)
