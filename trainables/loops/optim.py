"""Optimisers and per-step learning-rate schedules from an optimizer spec (plain dict).

Schedules (`OptimizerSpec.schedule`), as multipliers of the base lr after `step` steps:
cosine and poly (power `power`) over the whole run, constant, and `poly_cosine`, the
HiNAS code's search schedule (`one_stage_nas/solver/lr_scheduler.py`,
PolyCosineAnnealingLR, stepped once per epoch in `engine/searcher.py`):
`lr_e = lr_min + (lr - lr_min) * (1 + cos(pi e / T)) / 2 * (1 - e / E) ** power` for
epoch e = 1..E (E epochs, T = `period_epochs`, the code's T_MAX: the cosine falls to
lr_min in T epochs and climbs back in the next T), constant within an epoch.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

import torch

POLY_COSINE_PERIOD = 10  # the code's SOLVER.SEARCH.T_MAX (config/defaults.py)


def build_optimizer(params: Iterable[torch.nn.Parameter], spec: dict[str, Any],
                    names: dict[int, str] | None = None):
    """SGD or Adam over `params`; with `spec["bias"]` (names: id(parameter) -> dotted name)
    the biases form a second group with their own decay and lr factor."""
    params = param_groups(list(params), spec, names or {})
    if spec["name"] == "sgd":
        return torch.optim.SGD(
            params, lr=spec["lr"], momentum=spec["momentum"], weight_decay=spec["weight_decay"]
        )
    return torch.optim.Adam(
        params, lr=spec["lr"], betas=tuple(spec["betas"]), weight_decay=spec["weight_decay"]
    )


def param_groups(params: list[torch.nn.Parameter], spec: dict[str, Any],
                 names: dict[int, str]) -> list[dict[str, Any]]:
    """One group (possibly empty: no arch parameters), or, with `bias`, the biases apart
    (HiNAS code, solver/build.py make_normal_optimizer: a parameter whose name holds
    "bias" gets lr x BIAS_LR_FACTOR 2 and WEIGHT_DECAY_BIAS 0; here the name's last part
    is "bias")."""
    bias = spec.get("bias")
    if bias is None:
        return [{"params": params}]
    is_bias = [names.get(id(p), "").rsplit(".", 1)[-1] == "bias" for p in params]
    others = [p for p, flag in zip(params, is_bias) if not flag]
    biases = [p for p, flag in zip(params, is_bias) if flag]
    return [{"params": others},
            {"params": biases, "lr": spec["lr"] * bias["lr_factor"],
             "weight_decay": bias["weight_decay"]}]


def parameter_names(model: torch.nn.Module) -> dict[int, str]:
    return {id(parameter): name for name, parameter in model.named_parameters()}


def lr_factor(schedule: str, step: int, total_steps: int, lr: float, lr_min: float,
              power: float = 0.9, steps_per_epoch: int = 1,
              period_epochs: int | None = None) -> float:
    """Multiplier of the base lr after `step` of `total_steps` (see the module docstring)."""
    floor = lr_min / lr
    if schedule == "poly_cosine":
        return floor + (1 - floor) * poly_cosine(step, total_steps, power, steps_per_epoch,
                                                 period_epochs or POLY_COSINE_PERIOD)
    progress = min(step, total_steps) / max(1, total_steps)
    if schedule == "cosine":
        return floor + (1 - floor) * 0.5 * (1 + math.cos(math.pi * progress))
    if schedule == "poly":
        return floor + (1 - floor) * (1 - progress) ** power
    return 1.0


def poly_cosine(step: int, total_steps: int, power: float, steps_per_epoch: int,
                period_epochs: int) -> float:
    """The code's factor of epoch e = step // steps_per_epoch + 1 (its scheduler steps at
    an epoch's start, so the first epoch trains at e = 1 and the last at e = E, lr_min)."""
    epochs = max(1, math.ceil(total_steps / steps_per_epoch))
    epoch = min(step // steps_per_epoch + 1, epochs)
    cosine = (1 + math.cos(math.pi * epoch / period_epochs)) / 2
    return cosine * (1 - epoch / epochs) ** power


def build_scheduler(optimizer, spec: dict[str, Any], total_steps: int, steps_per_epoch: int = 1):
    """A LambdaLR stepped once per optimisation step; with `warmup_steps` W the factor of
    step s < W is also scaled by (s + 1) / W (the linear warm-up of Goyal et al., "Accurate,
    large minibatch SGD", 2017, Sec. 2.2, as restoration codes such as SwinIR and Restormer
    use), and the schedule itself is unchanged."""
    warmup = spec.get("warmup_steps", 0)

    def factor(step: int) -> float:
        scheduled = lr_factor(spec["schedule"], step, total_steps, spec["lr"], spec["lr_min"],
                              spec.get("power", 0.9), steps_per_epoch, spec.get("period_epochs"))
        return scheduled * min(1.0, (step + 1) / warmup) if warmup else scheduled

    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)
