"""The small HiNAS search study the orchestration benchmarks run, and a Ray session for them.

HiNAS (2 layers, 2 nodes, W = 6) on the photographs bundled with scikit-image
(nothing to download); the size sets the number of search steps so that one trial
lasts about 60 s (full), 10 s (quick) or 2 s (tiny) on one core of this machine.
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Iterator
from typing import Any

import ray

from orchestrator.run import start_ray
from orchestrator.study import validate
from trainables.data import SearchData, stage_data

EPOCHS = {"full": 3, "quick": 2, "tiny": 2}
STEPS = {"full": 24, "quick": 6, "tiny": 1}  # about 0.5 s per step here (1 thread)


def study_dict(size: str, seed: int = 0) -> dict[str, Any]:
    """A search-only study: the retrain section is never run by these benchmarks."""
    return {
        "name": f"bench-{size}",
        "seed": seed,
        "data": {"train": "embedded", "test": ["embedded"], "patch_size": 40,
                 "noise": {"type": "awgn", "sigma": 25}},
        "search_space": {"name": "hinas", "options": {"num_layers": 2, "num_nodes": 2,
                                                      "width": 6, "stem_channels": 16}},
        "search": {"epochs": EPOCHS[size], "steps_per_epoch": STEPS[size], "batch_size": 4,
                   "warmup_epochs": 1, "validate_from_epoch": 1, "val_crop": 64},
        "tune": {"num_samples": 1, "max_concurrent": 1},
        "resources": {"search": {"cpu": 1, "gpu": 0}},
    }


def search_inputs(size: str, seed: int = 0):
    """(validated Study, its SearchData)."""
    study = validate(study_dict(size, seed), "bench study")
    data: SearchData = stage_data(study).search
    return study, data


@contextlib.contextmanager
def ray_session() -> Iterator[float]:
    """Start a local Ray (loopback) unless one runs; yields the start-up seconds; shuts down
    only what it started."""
    started = not ray.is_initialized()
    began = time.perf_counter()
    start_ray(None)
    try:
        yield time.perf_counter() - began
    finally:
        if started:
            ray.shutdown()


def load_average() -> list[float]:
    """The machine's 1/5/15-minute load (other work on a shared machine skews ratios)."""
    return [round(value, 2) for value in os.getloadavg()]
