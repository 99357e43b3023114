"""Concurrency of 1-CPU trials: two search trials run concurrently against the same two run
one after the other, through Ray Tune on this 2-core machine.

Each trial holds 1 CPU, so `trainables.loops.devices.configure` gives its torch one thread,
and runs the HiNAS search loop of bench/tune_study.py (no MLflow: this measures how
trials share the machine, tune_overhead measures the logging). Each trial reports the
wall-clock start and end of its own loop. The value is the sequential time (the sum of
the two loops) over the concurrent span (first start to last end, so a late second
start counts against concurrency); Ray start-up and Tune's scheduling between trials are
left out and reported in the detail.
"""

from __future__ import annotations

import multiprocessing
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import torch
from ray import tune

from bench.tune_study import EPOCHS, STEPS, load_average, ray_session, search_inputs
from trainables.loops import configure, run_search

SEEDS = (0, 1)


def timed_search(config: dict, *, size: str) -> None:
    """Trainable: one 1-CPU search loop; reports its own wall-clock start and end."""
    study, data = search_inputs(size, config["seed"])
    runtime = configure(1, 0, study.precision)
    started = time.time()
    run_search(study, data, lambda *report: None, runtime)
    tune.report({"loop_start": started, "loop_end": time.time()})


def fit(size: str, concurrent: int, storage: Path) -> tuple[list[dict], float]:
    """Both seeds as trials, at most `concurrent` at a time; (their results, Tuner.fit s)."""
    trainable = tune.with_resources(tune.with_parameters(timed_search, size=size), {"cpu": 1})
    tuner = tune.Tuner(
        trainable,
        param_space={"seed": tune.grid_search(list(SEEDS))},
        tune_config=tune.TuneConfig(max_concurrent_trials=concurrent),
        run_config=tune.RunConfig(name=f"parallel-{concurrent}", storage_path=str(storage),
                                  verbose=0),
    )
    began = time.perf_counter()
    results = tuner.fit()
    seconds = time.perf_counter() - began
    errors = [str(r.error) for r in results if r.error is not None]
    if errors:
        raise RuntimeError(f"trial failed: {errors[0]}")
    return [r.metrics for r in results], seconds


def concurrency_speedup(sequential: list[dict], concurrent: list[dict]) -> dict:
    """Sum of the sequential loops over the concurrent span, from the trials' own clocks."""
    alone = sum(m["loop_end"] - m["loop_start"] for m in sequential)
    span = max(m["loop_end"] for m in concurrent) - min(m["loop_start"] for m in concurrent)
    first = min(m["loop_start"] for m in concurrent)
    return {"sequential_s": alone, "concurrent_span_s": span,
            "concurrent_loops": [[round(m["loop_start"] - first, 2),
                                  round(m["loop_end"] - first, 2)] for m in concurrent],
            "speedup": alone / span}


def matmul_seconds(repeats: int) -> float:
    """A compute-bound 1-thread loop (512 x 512 matmuls): the machine's control workload."""
    torch.set_num_threads(1)
    left, right = torch.randn(512, 512), torch.randn(512, 512)
    left @ right
    began = time.perf_counter()
    for _ in range(repeats):
        left @ right
    return time.perf_counter() - began


def machine_concurrency(repeats: int = 300) -> float:
    """What two 1-thread processes gain together on this machine now (2.0 on two idle cores):
    the ceiling of the trial speedup, measured without Ray or torch's model code."""
    spawn = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(2, mp_context=spawn) as pool:
        pool.submit(matmul_seconds, 1).result()  # start both workers
        pool.submit(matmul_seconds, 1).result()
        alone = pool.submit(matmul_seconds, repeats).result()
        together = [pool.submit(matmul_seconds, repeats) for _ in range(2)]
        return 2 * alone / max(future.result() for future in together)


def parallel_trial_speedup(size: str = "quick") -> dict:
    load_before = load_average()
    control = machine_concurrency()
    with tempfile.TemporaryDirectory(prefix="bench-parallel-") as folder, \
            ray_session() as ray_start_s:
        sequential, sequential_fit_s = fit(size, 1, Path(folder))
        concurrent, concurrent_fit_s = fit(size, 2, Path(folder))
    found = concurrency_speedup(sequential, concurrent)
    detail = {"sequential_s": round(found["sequential_s"], 2),
              "concurrent_span_s": round(found["concurrent_span_s"], 2),
              "concurrent_loops": found["concurrent_loops"],
              "sequential_fit_s": round(sequential_fit_s, 2),
              "concurrent_fit_s": round(concurrent_fit_s, 2), "ray_start_s": round(ray_start_s, 2),
              "fit_ratio": round(sequential_fit_s / concurrent_fit_s, 3),
              "machine_concurrency": round(control, 3),
              "epochs": EPOCHS[size], "steps_per_epoch": STEPS[size], "size": size,
              "load_average_before": load_before, "load_average_after": load_average()}
    return {"name": "parallel_trial_speedup", "value": round(found["speedup"], 3),
            "unit": "ratio", "target": 1.8, "detail": detail}
