"""The data of one arm's trials, loaded once in the driver, sent through the object store."""

from __future__ import annotations

from dataclasses import dataclass

from trainables.retrain_loop import RetrainData
from trainables.search_loop import SearchData


@dataclass(frozen=True)
class StageData:
    search: SearchData  # Train-W / Train-A / Validation-V
    retrain: RetrainData  # W+A / V and the named test sets
