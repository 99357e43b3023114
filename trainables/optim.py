"""Optimisers and per-step learning-rate schedules from an optimizer spec (plain dict)."""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

import torch


def build_optimizer(params: Iterable[torch.nn.Parameter], spec: dict[str, Any]):
    params = [{"params": list(params)}]  # one group, possibly empty (no arch parameters)
    if spec["name"] == "sgd":
        return torch.optim.SGD(
            params, lr=spec["lr"], momentum=spec["momentum"], weight_decay=spec["weight_decay"]
        )
    return torch.optim.Adam(
        params, lr=spec["lr"], betas=tuple(spec["betas"]), weight_decay=spec["weight_decay"]
    )


def lr_factor(schedule: str, step: int, total_steps: int, lr: float, lr_min: float) -> float:
    """Multiplier of the base lr after `step` of `total_steps` (cosine, poly 0.9, constant)."""
    progress = min(step, total_steps) / max(1, total_steps)
    floor = lr_min / lr
    if schedule == "cosine":
        return floor + (1 - floor) * 0.5 * (1 + math.cos(math.pi * progress))
    if schedule == "poly":
        return floor + (1 - floor) * (1 - progress) ** 0.9
    return 1.0


def build_scheduler(optimizer, spec: dict[str, Any], total_steps: int):
    """A LambdaLR stepped once per optimisation step."""
    return torch.optim.lr_scheduler.LambdaLR(
        optimizer,
        lambda step: lr_factor(spec["schedule"], step, total_steps, spec["lr"], spec["lr_min"]),
    )
