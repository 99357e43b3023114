"""What a search trial's sample is scored by (`tune.objective: supernet`): the validation
of the epoch whose genotype the trial hands on, not of its last epoch.

A search keeps the genotype of its best evaluation on V (HiNAS journal Sec. 3.4: the
supernet with the best validation performance is the search result), which its last
report carries with `provenance` {epoch, val_score, val_psnr}; its val/ metrics are the
last epoch's. Scoring a sample by those would rank one epoch and retrain another.
"""

from __future__ import annotations

import json
from typing import Any


def carried_metrics(result: dict[str, Any]) -> dict[str, Any]:
    """A search trial's last report with val/score, val/psnr and val/ssim (score - psnr /
    100) of its genotype's epoch; as it is when that genotype names no validation (a given
    genotype, an old file) or the result is not a search report."""
    text = result.get("genotype")
    if not text or "val/score" not in result:
        return result
    provenance = json.loads(text).get("provenance") or {}
    if "val_score" not in provenance or "val_psnr" not in provenance:
        return result
    score, psnr = float(provenance["val_score"]), float(provenance["val_psnr"])
    return {**result, "val/score": score, "val/psnr": psnr, "val/ssim": score - psnr / 100}
