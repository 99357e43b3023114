"""How a study runs rather than what it trains: per-phase Ray resources, results-table
groups and the MLflow tracking target (sections of the study file, docs/study-keys.md)."""

from __future__ import annotations

from pydantic import Field, field_validator

from studyspec.fields import Strict

RAY_UNIT = 1e-4  # Ray refuses finer fractions of a resource


class Resources(Strict):
    cpu: float = Field(1, ge=RAY_UNIT, le=4096)
    gpu: float = Field(0, ge=0, le=256)  # 0, or a share of at least 0.0001

    @field_validator("gpu")
    @classmethod
    def _ray_precision(cls, value: float) -> float:
        if 0 < value < RAY_UNIT:
            raise ValueError(f"Ray takes 0 or at least {RAY_UNIT:g}, got {value:g}")
        return value


class ResourcesSpec(Strict):
    search: Resources = Resources()
    retrain: Resources = Resources()


class GroupSpec(Strict):
    """One results table (e.g. a paper's ablation table); arms name it with `group:`."""

    title: str = ""


class TrackingSpec(Strict):
    uri: str | None = None  # default: sqlite:///mlruns-local/mlflow.db in the working folder
    experiment: str | None = None  # default: the study name
