"""What two-stage retraining (`retrain.proxy`) bought: per arm, the Kendall rank correlation
between the short and the full retraining's validation scores of the candidates that got
both, and the share of retraining steps it did not run (against retraining every
candidate in full). Read from the trial runs' `proxy` and `retrain_steps` tags and their
validation metrics; logged as metrics of the parent run (`proxy/kendall_tau`,
`proxy/compute_saved`, and per arm `proxy/<arm>/...`)."""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
from scipy.stats import kendalltau

from orchestrator.results.aggregate import FINISHED, RunRecord

SCORES = ("val/score", "val/psnr")  # the first a run has


def score(run: RunRecord) -> float | None:
    return next((run.metrics[key] for key in SCORES if key in run.metrics), None)


def proxy_metrics(children: Iterable[RunRecord]) -> dict[str, float]:
    arms: dict[str, dict[str, dict[str, list]]] = {}
    for run in children:
        kind = run.tag("proxy")
        if run.tag("phase") != "retrain" or kind not in ("short", "full"):
            continue
        unit = arms.setdefault(run.tag("arm"), {}).setdefault(
            run.tag("unit"), {"short": [], "full": [], "steps": []})
        unit["steps"].append((kind, float(run.tag("retrain_steps") or 0)))
        value = score(run)
        if run.status == FINISHED and value is not None:
            unit[kind].append(value)
    metrics: dict[str, float] = {}
    pairs, spent, full_cost = [], 0.0, 0.0
    for arm, units in sorted(arms.items()):
        both = [(np.mean(u["short"]), np.mean(u["full"])) for u in units.values()
                if u["short"] and u["full"]]
        steps = [step for u in units.values() for step in u["steps"]]
        full = max((s for kind, s in steps if kind == "full"), default=0.0)
        arm_spent = sum(s for _, s in steps)
        arm_full = full * sum(1 for kind, _ in steps if kind == "short")
        if arm_full:
            metrics[f"proxy/{arm}/compute_saved"] = 1 - arm_spent / arm_full
            spent, full_cost = spent + arm_spent, full_cost + arm_full
        if len(both) >= 2:
            metrics[f"proxy/{arm}/kendall_tau"] = float(kendalltau(*zip(*both)).statistic)
            pairs += both
    if full_cost:
        metrics["proxy/compute_saved"] = 1 - spent / full_cost
    if len(pairs) >= 2:
        metrics["proxy/kendall_tau"] = float(kendalltau(*zip(*pairs)).statistic)
    return metrics
