"""Split training images for a search (HiNAS: Zhang et al., IJCV 2022, Sec. 4.1; Superkernel
NAS: Mozejko et al., CVPRW 2020, Sec. 5.1).

Train-W trains the weights, Train-A the architecture, Validation-V picks the
best epoch. Random: V = round(val_fraction * n) (halves round up), at least 1
when val_fraction > 0. Stratified (the Superkernel paper's 90/10 split, by phone
type): each group of images sharing a label gives V round(val_fraction * n_g),
at least 1 when it has 2 or more images and never all of them, so V keeps every
group's share. Either way the rest is halved at random, Train-W taking the odd one.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from typing import TypeVar

import numpy as np

Item = TypeVar("Item")


def split_for_search(
    images: list[Item], seed: int, val_fraction: float = 0.02,
    groups: Sequence[str] | None = None,
) -> tuple[list[Item], list[Item], list[Item]]:
    """(train_w, train_a, val): disjoint, deterministic given `seed`, each in input order.
    `groups` (one label per image) stratifies V by label."""
    if not 0 <= val_fraction < 1:
        raise ValueError(f"val_fraction must be in [0, 1), got {val_fraction}")
    needed = 3 if val_fraction > 0 else 2
    if len(images) < needed:
        raise ValueError(f"a search split needs at least {needed} images, got {len(images)}")
    rng = np.random.default_rng(seed)
    if groups is None:  # V is the permutation's tail (the split of every earlier version)
        order = rng.permutation(len(images))
        num_val = validation_size(len(images), val_fraction)
        val, rest = order[len(images) - num_val:], order[: len(images) - num_val]
    else:
        val = stratified_validation(groups, val_fraction, rng)
        rest = rng.permutation(np.setdiff1d(np.arange(len(images)), val))
    if len(rest) < 2:
        raise ValueError(f"{len(val)} of {len(images)} images went to Validation-V, leaving "
                         "fewer than 2 to train; lower val_fraction or add images")
    num_weights = (len(rest) + 1) // 2
    parts = (rest[:num_weights], rest[num_weights:], val)
    return tuple([images[i] for i in sorted(part)] for part in parts)


def validation_size(num_items: int, val_fraction: float) -> int:
    """round(val_fraction * n), at least 1 if val_fraction > 0, leaving 2 for W and A."""
    if val_fraction == 0:
        return 0
    return min(max(1, math.floor(val_fraction * num_items + 0.5)), num_items - 2)


def stratified_validation(groups: Sequence[str], val_fraction: float,
                          rng: np.random.Generator) -> np.ndarray:
    """Indices of V: from each group (in sorted label order) round(val_fraction * n_g) at
    random, at least 1 from a group of 2 or more, never a whole group."""
    if val_fraction == 0:
        return np.array([], dtype=int)
    labels = np.asarray(list(groups))
    chosen = []
    for label in sorted(set(groups)):
        members = np.flatnonzero(labels == label)
        share = min(max(1, math.floor(val_fraction * len(members) + 0.5)), len(members) - 1)
        chosen.append(rng.permutation(members)[:share])
    return np.concatenate(chosen)


def group_labels(names: Sequence[str], pattern: str) -> list[str]:
    """The first group of `pattern` searched in each name; a name it does not match (up to 5
    listed) is a ValueError."""
    compiled = re.compile(pattern)
    found = [compiled.search(name) for name in names]
    missing = [name for name, match in zip(names, found) if match is None]
    if missing:
        shown = ", ".join(missing[:5]) + (", ..." if len(missing) > 5 else "")
        raise ValueError(f"{len(missing)} of {len(names)} image names do not match "
                         f"'{pattern}': {shown}")
    return [match.group(1) or "" for match in found]
