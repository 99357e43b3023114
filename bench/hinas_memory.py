"""Cell sharing (HiNAS journal Eq. 5 against Auto-DeepLab's Eq. 6): peak memory and time of
one supernet training step with and without it, and the absolute cost of the step.

At 3 layers x 3 levels the supernet without sharing runs 14 cells against 8, so 14 / 8
= 1.75 bounds the memory ratio of the cells' share; the stem, routes and head are the
same in both and pull the ratio below it. Measured values: 1.70x memory and 1.80x time
on the public code's structure. Peak memory is the profiler's allocation timeline of
forward + backward (not process RSS); both supernets run in channels_last, one thread
(a trial's 1-CPU share), in the same process.
"""

from __future__ import annotations

from bench.hinas_supernet import (
    MIB,
    SIZES,
    batch,
    build,
    interleaved_times,
    peak_step_bytes,
    saved_for_backward_bytes,
    train_step,
    trial_process,
)

CELL_RUNS = {True: 8, False: 14}
THREADS = 1


def sharing_measurements(size: str) -> dict:
    """Peak MiB and median step seconds with and without cell sharing (same inputs)."""
    noisy, clean = batch(size)
    result = {}
    with trial_process(THREADS):
        supernets = {sharing: build(size, sharing) for sharing in (True, False)}
        for sharing, supernet in supernets.items():
            result[f"peak_mib_{'with' if sharing else 'without'}"] = round(
                peak_step_bytes(supernet, noisy, clean) / MIB, 1)
            supernet.reset_cell_calls()
            result[f"saved_mib_{'with' if sharing else 'without'}"] = round(
                saved_for_backward_bytes(supernet, noisy, clean) / MIB, 1)
            result[f"cell_runs_{'with' if sharing else 'without'}"] = supernet.cell_calls()
        steps = {str(sharing): (lambda s=supernet: train_step(s, noisy, clean))
                 for sharing, supernet in supernets.items()}
        times = interleaved_times(steps, SIZES[size]["repeats"])
    result.update(step_s_with=round(times["True"], 3), step_s_without=round(times["False"], 3))
    return result


_CACHE: dict[str, dict] = {}


def cached_measurements(size: str) -> dict:
    """One measurement per size shared by the three benchmarks of a run."""
    if size not in _CACHE:
        _CACHE[size] = sharing_measurements(size)
    return _CACHE[size]


def setting(size: str) -> dict:
    spec = SIZES[size]
    return {"batch": spec["batch"], "patch": spec["side"], "num_nodes": spec["num_nodes"],
            "threads": THREADS, "size": size}


def cell_sharing_memory_ratio(size: str = "quick") -> dict:
    found = cached_measurements(size)
    ratio = found["peak_mib_without"] / found["peak_mib_with"]
    return {"name": "cell_sharing_memory_ratio", "value": round(ratio, 3), "unit": "ratio",
            "target": 1.7, "detail": {**found, **setting(size), "ceiling": 14 / 8,
                                      "saved_ratio": round(found["saved_mib_without"]
                                                           / found["saved_mib_with"], 3)}}


def cell_sharing_step_speedup(size: str = "quick") -> dict:
    found = cached_measurements(size)
    ratio = found["step_s_without"] / found["step_s_with"]
    return {"name": "cell_sharing_step_speedup", "value": round(ratio, 3), "unit": "ratio",
            "target": None, "detail": {**found, **setting(size)}}


def hinas_search_step(size: str = "quick") -> dict:
    """Absolute step time and peak memory with sharing (official code: ~5.7 s, ~4.3 GiB)."""
    found = cached_measurements(size)
    detail = {"step_s": found["step_s_with"], "peak_mib": found["peak_mib_with"],
              "official_step_s": 5.7, "official_peak_mib": 4.3 * 1024, **setting(size)}
    return {"name": "hinas_search_step", "value": found["step_s_with"], "unit": "s",
            "target": None, "detail": detail}
