"""How long a search epoch is (`search.epoch`): a fixed number of steps, or one random crop
of every Train-W image, as the HiNAS code's epoch (one pass of a shuffled DataLoader over
the image list, `one_stage_nas/data/build_dataset.py`, `engine/searcher.py`).
"""

from __future__ import annotations

import math
from typing import Any

from studyspec.fields import error_at

DEFAULT_STEPS = 100  # search.steps_per_epoch left out with search.epoch: steps


def steps_or_images(data: Any) -> Any:
    """Before validation: `steps_per_epoch` defaults to DEFAULT_STEPS, and is refused with
    `epoch: images` (the images decide the steps)."""
    if not isinstance(data, dict):
        return data
    given = data.get("steps_per_epoch") is not None
    if data.get("epoch") == "images":
        if given:
            raise error_at("SearchSpec", "epoch", "images takes the steps of an epoch from the "
                           "Train-W images; drop steps_per_epoch or use epoch: steps")
        return data
    return data if given else {**data, "steps_per_epoch": DEFAULT_STEPS}


def image_epoch_steps(images: int, batch_size: int) -> int:
    """Steps of an epoch that crops every one of `images` once: ceil(images / batch_size)
    (the HiNAS DataLoader keeps its last, partial batch; here it is filled up)."""
    if images < 1:
        raise ValueError("an epoch of images needs at least one training image")
    return math.ceil(images / batch_size)
