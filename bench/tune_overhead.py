"""Orchestration overhead: one search trial run through Ray Tune with MLflow logging
(orchestrator.run.runner.run_study on a search-only arm, SQLite tracking in a temporary
folder) against the same loop (trainables.loops.search.run_search) called directly with
the same study, data and one thread.

The value compares the trial's own wall time (Tune's `time_total_s`, from the trial
function's start to its last report: MLflow child run, per-epoch metrics and
checkpoints included) with the direct loop's, which runs in a fresh process like the
trial's worker. Ray start-up and the whole end-to-end time are in the detail.
"""

from __future__ import annotations

import multiprocessing
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

from bench.tune_study import (
    EPOCHS,
    STEPS,
    load_average,
    ray_session,
    search_inputs,
    study_dict,
)
from orchestrator.run import RunOptions, run_study
from orchestrator.study import validate
from trainables.loops import configure, run_search


def direct_seconds(size: str) -> float:
    """Wall time of run_search called directly (1 thread, no reporting)."""
    study, data = search_inputs(size)
    runtime = configure(1, 0, study.precision)
    began = time.perf_counter()
    run_search(study, data, lambda *report: None, runtime)
    return time.perf_counter() - began


def direct_in_fresh_process(size: str) -> float:
    """Like the trial's worker, a new process (first-call warm-ups included); in-process at
    size tiny, where the seconds of a process start would dominate a test."""
    if size == "tiny":
        return direct_seconds(size)
    spawn = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(1, mp_context=spawn) as pool:
        return pool.submit(direct_seconds, size).result()


def orchestrated(size: str, folder: Path) -> dict:
    """Run one search-only study of one trial through the orchestrator; seconds of each part."""
    raw = {**study_dict(size), "arms": {"named": [{"name": "default", "retrain": False}]}}
    study = validate(raw, "bench study")
    options = RunOptions(f"sqlite:///{folder / 'mlflow.db'}", str(folder / "runs"), verbose=0)
    began = time.perf_counter()
    with ray_session() as ray_start_s:
        fitted = time.perf_counter()
        outcome = run_study(study, options)
        done = time.perf_counter()
    (result,) = list(outcome.results)
    if result.error is not None:
        raise RuntimeError(f"search trial failed: {result.error}")
    return {"trial_s": result.metrics["time_total_s"], "study_s": done - fitted,
            "ray_start_s": ray_start_s, "end_to_end_s": done - began}


def tune_overhead(size: str = "quick") -> dict:
    load_before = load_average()
    direct_s = direct_in_fresh_process(size)
    with tempfile.TemporaryDirectory(prefix="bench-tune-") as folder:
        found = orchestrated(size, Path(folder))
    detail = {"direct_s": round(direct_s, 2), **{k: round(v, 2) for k, v in found.items()},
              "end_to_end_ratio": round(found["end_to_end_s"] / direct_s, 3),
              "epochs": EPOCHS[size], "steps_per_epoch": STEPS[size], "size": size,
              "load_average_before": load_before, "load_average_after": load_average()}
    return {"name": "tune_overhead", "value": round(found["trial_s"] / direct_s, 3),
            "unit": "ratio", "target": 1.05, "detail": detail}
