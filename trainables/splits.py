"""Split training images for a bilevel search (SPEC 1.1, HiNAS).

Train-W trains the weights, Train-A the architecture, Validation-V picks the
best epoch. V = round(val_fraction * n) (halves round up), at least 1 when
val_fraction > 0; the rest is halved, Train-W taking the odd one.
"""

from __future__ import annotations

import math
from typing import TypeVar

import numpy as np

Item = TypeVar("Item")


def split_for_search(
    images: list[Item], seed: int, val_fraction: float = 0.02
) -> tuple[list[Item], list[Item], list[Item]]:
    """(train_w, train_a, val): disjoint, deterministic given `seed`, each in input order."""
    if not 0 <= val_fraction < 1:
        raise ValueError(f"val_fraction must be in [0, 1), got {val_fraction}")
    needed = 3 if val_fraction > 0 else 2
    if len(images) < needed:
        raise ValueError(f"a search split needs at least {needed} images, got {len(images)}")
    order = np.random.default_rng(seed).permutation(len(images))
    num_val = validation_size(len(images), val_fraction)
    num_weights = (len(images) - num_val + 1) // 2
    parts = np.split(order, [num_weights, len(images) - num_val])
    return tuple([images[i] for i in sorted(part)] for part in parts)


def validation_size(num_items: int, val_fraction: float) -> int:
    """round(val_fraction * n), at least 1 if val_fraction > 0, leaving 2 for W and A."""
    if val_fraction == 0:
        return 0
    return min(max(1, math.floor(val_fraction * num_items + 0.5)), num_items - 2)
