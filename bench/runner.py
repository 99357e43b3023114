"""`python -m bench`: run each benchmark, print one JSON object per line.

Every benchmark is a function `fn(size) -> dict` with size "full", "quick" or "tiny",
listed in `BENCHMARKS` as name -> (module, function) and imported only when it runs, so
a module that is missing or broken costs one error line, never the run:

    {"name": ..., "value": ..., "unit": "ratio", "target": ..., "detail": {...}}
    {"name": ..., "value": null, "error": "ModuleNotFoundError: ..."}
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import json
import sys
import time
import traceback
from collections.abc import Iterable

# name -> (module, function); the order is the run order (cheap and in-process first)
BENCHMARKS: dict[str, tuple[str, str]] = {
    "cell_sharing_memory_ratio": ("bench.hinas_memory", "cell_sharing_memory_ratio"),
    "cell_sharing_step_speedup": ("bench.hinas_memory", "cell_sharing_step_speedup"),
    "hinas_search_step": ("bench.hinas_memory", "hinas_search_step"),
    "supernet_flop_utilization": ("bench.hinas_flops", "supernet_flop_utilization"),
    "superkernel_full_vs_separate_speedup": ("bench.superkernel_speed",
                                             "superkernel_full_vs_separate_speedup"),
    "modnas_t1_vs_dncnn_latency": ("bench.modnas_latency", "modnas_t1_vs_dncnn_latency"),
    **{f"retrain_images_per_s_{family}": ("bench.retrain_throughput",
                                          f"retrain_images_per_s_{family}")
       for family in ("hinas", "modnas_t1", "modnas_t3", "superkernel", "dncnn")},
    "data_share_of_step": ("bench.retrain_throughput", "data_share_of_step"),
    "tune_overhead": ("bench.tune_overhead", "tune_overhead"),
    "parallel_trial_speedup": ("bench.tune_parallel", "parallel_trial_speedup"),
    "study_schedule_efficiency": ("bench.schedule_efficiency", "study_schedule_efficiency"),
}
SIZES = ("full", "quick", "tiny")


def selected(only: Iterable[str] | None) -> list[str]:
    """Benchmark names from repeated or comma-separated --only values (all when empty)."""
    names = [name.strip() for value in only or [] for name in value.split(",") if name.strip()]
    unknown = [name for name in names if name not in BENCHMARKS]
    if unknown:
        raise SystemExit(f"unknown benchmark {unknown[0]!r} (known: {', '.join(BENCHMARKS)})")
    return names or list(BENCHMARKS)


def run_one(name: str, size: str) -> dict:
    """The benchmark's result line, or {"name", "value": None, "error"} when it fails."""
    module_name, function_name = BENCHMARKS[name]
    began = time.perf_counter()
    try:  # what a benchmark prints (Ray Tune's tables) goes to stderr: stdout is JSON lines
        with contextlib.redirect_stdout(sys.stderr):
            function = getattr(importlib.import_module(module_name), function_name)
            result = dict(function(size))
    except Exception as error:  # a missing or failing benchmark is reported, never fatal
        last = traceback.extract_tb(error.__traceback__)[-1]
        frozen = last.filename.startswith("<")
        where = "" if frozen else f" ({last.filename.rsplit('/', 1)[-1]}:{last.lineno})"
        return {"name": name, "value": None, "error": f"{type(error).__name__}: {error}{where}",
                "seconds": round(time.perf_counter() - began, 1)}
    result.setdefault("name", name)
    result.setdefault("unit", "ratio")
    result.setdefault("target", None)
    result.setdefault("detail", {})
    result["seconds"] = round(time.perf_counter() - began, 1)
    return result


def run(names: Iterable[str], size: str, out=None) -> list[dict]:
    """Run `names` in order, printing each result line to `out` (stdout) as it finishes."""
    out = out or sys.stdout
    results = []
    for name in names:
        result = run_one(name, size)
        print(json.dumps(result, default=str), file=out, flush=True)
        results.append(result)
    return results


def parser() -> argparse.ArgumentParser:
    root = argparse.ArgumentParser(prog="python -m bench", description=__doc__.splitlines()[0])
    root.add_argument("--only", action="append", metavar="NAME[,NAME]",
                      help=f"run only these (repeatable or comma list): {', '.join(BENCHMARKS)}")
    root.add_argument("--quick", action="store_true", help="size 'quick' (minutes on 2 CPUs)")
    root.add_argument("--size", choices=SIZES, help="full (default), quick or tiny")
    return root


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    size = args.size or ("quick" if args.quick else "full")
    run(selected(args.only), size)
    return 0
