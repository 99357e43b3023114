"""The per-study results table (Markdown + CSV artifacts of the parent run)."""

from __future__ import annotations

import csv
import io
import math
from typing import Any

from studyspec.schema import NoiseSpec
from trainables.tracking import Tracker

LEADING = ["arm", "arch_hash", "noise", "cost/params", "cost/gflops_per_mp",
           "cost/latency_ms_per_mp"]


def results_rows(arm: str, results) -> list[dict[str, Any]]:
    """One row per finished retrain trial: identity, cost and test metrics."""
    rows = []
    for result in results:
        metrics = result.metrics or {}
        if result.error is not None or not any(k.startswith("test/") for k in metrics):
            continue
        noise = NoiseSpec.model_validate(result.config["noise"])
        row = {"arm": arm, "arch_hash": metrics.get("arch_hash", ""),
               "noise": ",".join(noise.test_keys()) or f"blind {noise.sigma_range}"}
        row.update({k: v for k, v in metrics.items() if k.startswith(("cost/", "test/"))})
        rows.append(row)
    return rows


def columns(rows: list[dict[str, Any]]) -> list[str]:
    seen = [key for row in rows for key in row]
    rest = sorted({key for key in seen if key not in LEADING})
    return [key for key in LEADING if key in seen] + rest


def cell(value: Any) -> str:
    if isinstance(value, float):
        return "" if math.isnan(value) else f"{value:.4g}" if abs(value) >= 1e4 else f"{value:.4f}"
    return str(value)


def markdown(rows: list[dict[str, Any]]) -> str:
    keys = columns(rows)
    lines = ["| " + " | ".join(keys) + " |", "|" + "---|" * len(keys)]
    lines += ["| " + " | ".join(cell(row.get(k, "")) for k in keys) + " |" for row in rows]
    return "\n".join(lines) + "\n"


def csv_text(rows: list[dict[str, Any]]) -> str:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=columns(rows))
    writer.writeheader()
    writer.writerows(rows)
    return buffer.getvalue()


def write_tables(tracker: Tracker, run_id: str, rows: list[dict[str, Any]]) -> None:
    tracker.log_text(run_id, markdown(rows), "results/results.md")
    tracker.log_text(run_id, csv_text(rows), "results/results.csv")
