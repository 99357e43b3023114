"""What the training loops are given: the images of a search and of a retraining, and one
arm's bundle of both, loaded once in the driver and sent through Ray's object store."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import torch

from trainables.data.images import NamedImage


@dataclass(frozen=True)
class SearchData:
    train_w: list[NamedImage]  # weight updates
    train_a: list[NamedImage]  # architecture updates
    val: list[NamedImage]  # best-epoch selection
    # search.monitor: test sets the supernet is scored on each epoch (never selects)
    monitor: dict[str, list[NamedImage]] = dataclasses.field(default_factory=dict)


@dataclass(frozen=True)
class RetrainData:
    train: list[NamedImage]
    val: list[NamedImage]
    test_sets: dict[str, list[NamedImage]]  # test-set name -> images
    weights: bytes | None = None  # a baseline's published state dict: evaluated, not trained
    start: dict[str, torch.Tensor] | None = None  # inherited weights the network starts from


@dataclass(frozen=True)
class StageData:
    search: SearchData  # Train-W / Train-A / Validation-V
    retrain: RetrainData  # W+A / V and the named test sets
