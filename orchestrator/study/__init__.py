"""A study file read once into a validated `Study`, and what it will run:
its arms, their units (seeds, tuned samples), the Optuna space of a tuned arm, the plan.

`__all__` is what other packages may import; the modules are private to it."""

from typing import TYPE_CHECKING

from trainables import lazy_face

if TYPE_CHECKING:  # imported when first used (`lazy_face`)
    from orchestrator.study.arms import arm_indices, check_published, checked_arms, tuned_values
    from orchestrator.study.optuna_search import make_searcher, optuna_space
    from orchestrator.study.plan import ArmPlan, arm_plan
    from orchestrator.study.reading import StudyError, load_study, validate
    from orchestrator.study.units import (
        SEARCH,
        proxy_configs,
        retrain_configs,
        sample_key,
        search_config,
    )

__all__ = [
    "ArmPlan",
    "SEARCH",
    "StudyError",
    "arm_indices",
    "arm_plan",
    "check_published",
    "checked_arms",
    "load_study",
    "make_searcher",
    "optuna_space",
    "proxy_configs",
    "retrain_configs",
    "sample_key",
    "search_config",
    "tuned_values",
    "validate",
]

__getattr__ = lazy_face(__name__)
