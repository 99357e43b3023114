"""The supernet scored on named test sets every search epoch: MoD-NAS Fig. 3's curves.

`search.monitor: [set12]` evaluates the supernet as validation does (eval mode, the
space's own forward of the supernet) on each named test set at the validation levels,
with the test protocol of `evaluation.py` (`evaluate_sets`: the one deterministic test input
per image and level, 8-bit PSNR/SSIM), on whole images unless `search.monitor_crop`
centre-crops them. Metrics: `search/test/<set>/<level>/psnr` and `.../ssim`, plus
`time/monitor_s`, kept out of the epoch's and the search's time. The scores only draw
curves: the architecture is still selected on Validation-V, never on a test set.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from torch import nn

from trainables.data import NamedImage
from trainables.loops.devices import Runtime
from trainables.loops.evaluation import evaluate_sets
from trainables.loops.parts import centre_crop

PREFIX = "search/test/"  # search/test/<set>/<level>/<psnr|ssim>


@dataclass(frozen=True)
class Monitor:
    sets: dict[str, list[NamedImage]]  # metric label -> images (cropped once)
    keys: list[str]  # levels, e.g. ["sigma25"] or ["q10", "q40"]
    runtime: Runtime

    @classmethod
    def build(cls, sets: dict[str, list[NamedImage]], crop: int | None, keys: list[str],
              runtime: Runtime) -> Monitor:
        return cls({name: centre_crop(images, crop) for name, images in sets.items()},
                   list(keys), runtime)

    def __call__(self, supernet: nn.Module) -> dict[str, float]:
        """This epoch's scores (nothing without monitor sets)."""
        if not self.sets:
            return {}
        began = time.perf_counter()
        scores = evaluate_sets(supernet, self.sets, self.keys, self.runtime.device)
        return {**{f"{PREFIX}{key}": value for key, value in scores.items()},
                "time/monitor_s": time.perf_counter() - began}


def is_monitor_psnr(key: str) -> bool:
    """A monitor PSNR curve (`search/test/set12/sigma25/psnr`), drawn with the search's plots."""
    return key.startswith(PREFIX) and key.endswith("/psnr")
