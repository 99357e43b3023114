"""Scheduling efficiency of a whole study: orchestrator.run.runner.run_study with the search and
retrain loops replaced by timed sleeps of known, unequal lengths, on a local Ray that declares
logical GPUs (none need exist: the stand-ins never touch a device).

Every arm x seed unit searches, then retrains once per `retrain.noise` entry; every trial
holds {cpu: 1, gpu: 0.5}, so 8 logical GPUs give 16 slots for 18 units (6 arms x 3 seeds).
A trial's length follows from its study alone (the arm's `steps_per_epoch`, set per arm,
times the epochs, times a per-seed factor), so the driver knows every length in advance.
Each stand-in reports once per epoch (MLflow metrics and a Tune checkpoint, as real trials)
and sleeps to per-epoch deadlines, so its own length is exactly the known one.

The value is the ideal makespan, the larger of the longest search + retrain chain and the
total work over the slots, over the measured one: from the study's parent MLflow run
(created with Ray already up, just before the Tune experiment starts) to the end of its
last child run. Trial starts (a Ray worker process, its imports, the trial's MLflow run)
count against the orchestrator. The detail says where the time went: the start latencies
from the trials' clocks, the machine's CPU per trial, the ratio each emission policy would
reach with free trial starts, and a model of the measured run (the searcher's longest-chain
order with the measured CPU per trial shared by the trials starting together here).

Trial lengths set the share of fixed start costs: a new worker process costs about 5 CPU-s
here (Python, Ray, torch, MLflow imports), and the first 16 trials start together on 2
cores (about 36 s, `start_overhead_s.first_wave`); later trials reuse workers. Measured on
this 2-core machine: full size at a 4 s step (searches 48-108 s) gave 0.765, at 8 s 0.846,
at the default 10 s (searches 2-4.5 min, 9 minutes in all) 0.867; with free starts the
searcher's order reaches 0.97 (`zero_cost_ratio.longest_chain`).

A trial start costs about 5 s of CPU on the 2-core development machine, so 16 trials starting
together take some 40 s there; the full size (54 trials, an ideal of about 190 s) lasts about
5 minutes, quick (36 trials, 1 retrain each) about 2, tiny (3 units on 2 slots) about 30 s.
"""

from __future__ import annotations

import json
import os
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import ray

from bench.schedule_model import POLICIES, Unit, ideal_makespan, simulate
from bench.tune_study import load_average

CPU_PER_TRIAL, GPU_PER_TRIAL = 1, 0.5
# per arm: steps per epoch of its search and of its retraining (unequal, arm by arm)
SEARCH_STEPS = (6, 9, 4, 8, 5, 7)
RETRAIN_STEPS = (4, 3, 7, 2, 5, 6)
SEED_FACTOR = 0.1  # seed s lasts (1 + 0.1 s) times as long as seed 0


@dataclass(frozen=True)
class Size:
    arms: int
    seeds: tuple[int, ...]
    noises: tuple[float, ...]  # AWGN sigmas: one retrain trial per unit and sigma
    gpus: int  # logical GPUs the local Ray declares (slots = gpus / GPU_PER_TRIAL)
    step_s: float  # seconds per stand-in "step"
    search_epochs: int = 3
    retrain_epochs: int = 2


SIZES = {
    "full": Size(arms=6, seeds=(0, 1, 2), noises=(25, 50), gpus=8, step_s=10.0),
    "quick": Size(arms=6, seeds=(0, 1, 2), noises=(25,), gpus=8, step_s=1.0),
    "tiny": Size(arms=3, seeds=(0,), noises=(25,), gpus=1, step_s=0.2, search_epochs=2,
                 retrain_epochs=1),
}


# --- the stand-in loops ---------------------------------------------------------------------
def seed_factor(seed: int) -> float:
    return 1 + SEED_FACTOR * seed


def search_seconds(study, step_s: float) -> float:
    """The known length of a search trial of `study` (the arm's, with the unit's seed)."""
    return study.search.epochs * study.search.steps_per_epoch * step_s * seed_factor(study.seed)


def retrain_seconds(study, step_s: float) -> float:
    return (study.retrain.epochs * study.retrain.steps_per_epoch * step_s
            * seed_factor(study.seed))


def sleep_epochs(seconds: float, epochs: int, start: int, report: Callable) -> None:
    """A trial of `seconds` in `epochs` equal slices, from epoch `start` (after a restore):
    sleep each slice up to a fixed deadline, then report, so the trial lasts its known length
    whatever its reports cost (unless they overrun a slice)."""
    began = time.time()
    slice_s = seconds / epochs
    for number, epoch in enumerate(range(start, epochs), start=1):
        time.sleep(max(0.0, began + number * slice_s - time.time()))
        report(epoch, {"bench/began": began, "bench/ended": time.time()})


@dataclass(frozen=True)
class SleepSearch:
    """Stand-in for trainables.loops.search.run_search: sleeps, returns a fixed genotype."""

    step_s: float
    genotype: str  # JSON of a valid genotype of the study's space

    def __call__(self, study, data, report, runtime, state=None):
        from searchspaces.genotype import Genotype

        best = {"genotype": json.loads(self.genotype)}
        start = state["epoch"] + 1 if state else 0
        epochs = study.search.epochs

        def epoch_report(epoch: int, times: dict[str, float]) -> None:
            score = 0.5 + 0.01 * epoch
            report(epoch, {"train/loss": 1.0 / (epoch + 1), "val/psnr": 20.0 + epoch,
                           "val/ssim": score, "val/score": score, **times},
                   {"epoch": epoch, "best": best})

        sleep_epochs(search_seconds(study, self.step_s), epochs, start, epoch_report)
        return Genotype.from_json(self.genotype, source="bench genotype")


@dataclass(frozen=True)
class SleepRetrain:
    """Stand-in for trainables.loops.retrain.run_retrain: sleeps, returns an identity 1x1
    convolution (the adapter saves its weights and runs it on the test images)."""

    step_s: float

    def __call__(self, study, genotype, noise, data, report, runtime, state=None):
        import torch

        channels = 3 if study.data.color else 1
        model = torch.nn.Conv2d(channels, channels, 1, bias=False)
        with torch.no_grad():
            model.weight.copy_(torch.eye(channels).view(channels, channels, 1, 1))
        keys = noise.test_keys() or ["sigma25"]
        epochs, start = study.retrain.epochs, state["epoch"] + 1 if state else 0
        final: dict[str, float] = {}

        def epoch_report(epoch: int, times: dict[str, float]) -> None:
            metrics = {"train/loss": 1.0 / (epoch + 1), "val/psnr": 25.0 + epoch,
                       "val/ssim": 0.7, **times}
            if epoch == epochs - 1:
                metrics.update({f"test/{name}/{key}/{kind}": value for name in study.data.test
                                for key in keys for kind, value in (("psnr", 25.0 + epoch),
                                                                    ("ssim", 0.7))})
            final.clear()
            final.update(metrics)
            report(epoch, metrics, {"epoch": epoch})

        sleep_epochs(retrain_seconds(study, self.step_s), epochs, start, epoch_report)
        return model, final


def bench_genotype(study) -> str:
    """A valid genotype of the study's space (derived from its supernet, once, untimed)."""
    from searchspaces.registry import get_space

    space = get_space(study.search_space.name)
    supernet = space.build_supernet(study.search_space.resolved_options(),
                                    3 if study.data.color else 1)
    return supernet.derive().to_json()


# --- the study ------------------------------------------------------------------------------
def study_dict(size: str) -> dict[str, Any]:
    """6 (tiny: 3) arms that differ only in their trials' lengths; every seed; every sigma."""
    spec = SIZES[size]
    arms = [{"name": f"arm{i}", "set": {"search.steps_per_epoch": SEARCH_STEPS[i],
                                         "retrain.steps_per_epoch": RETRAIN_STEPS[i]}}
            for i in range(spec.arms)]
    phase = {"cpu": CPU_PER_TRIAL, "gpu": GPU_PER_TRIAL}
    return {
        "name": f"bench-schedule-{size}",
        "seeds": list(spec.seeds),
        "data": {"train": "embedded", "test": ["embedded"], "patch_size": 40,
                 "noise": {"type": "awgn", "sigma": spec.noises[0]}},
        "search_space": {"name": "hinas", "options": {"num_layers": 2, "num_nodes": 2,
                                                      "width": 6, "stem_channels": 16}},
        "search": {"epochs": spec.search_epochs, "steps_per_epoch": 1, "batch_size": 4,
                   "warmup_epochs": 1, "validate_from_epoch": 1, "val_crop": 64},
        "retrain": {"epochs": spec.retrain_epochs, "steps_per_epoch": 1, "batch_size": 4,
                    "noise": [{"type": "awgn", "sigma": sigma} for sigma in spec.noises]},
        "tune": {"max_concurrent": 64},
        "resources": {"search": phase, "retrain": phase},
        "arms": {"named": arms},
    }


def planned_units(study, step_s: float) -> list[Unit]:
    """Every unit with its known trial lengths (round robin over arms, seed by seed: the
    searcher's order among equal chains)."""
    from orchestrator.study import checked_arms

    arms = checked_arms(study, "bench study")
    units = []
    for seed_index in range(max(len(a.seeds or resolved.seed_list()) for a, resolved in arms)):
        for arm, resolved in arms:
            seeds = list(arm.seeds or resolved.seed_list())
            if seed_index >= len(seeds):
                continue
            unit_study = resolved.model_copy(update={"seed": seeds[seed_index]})
            noises = resolved.retrain.noise or [resolved.data.noise]
            retrain = retrain_seconds(unit_study, step_s)
            units.append(Unit(f"{arm.name}/s{seeds[seed_index]}",
                              search_seconds(unit_study, step_s), (retrain,) * len(noises)))
    return units


# --- the run --------------------------------------------------------------------------------
def start_local_ray(gpus: int) -> bool:
    """A local Ray on loopback declaring `gpus` logical GPUs and 2 CPUs per GPU, unless one
    runs (then its resources set the slots); True when this call started it."""
    if ray.is_initialized():
        return False
    from orchestrator.run import LOOPBACK, keep_on_loopback

    os.environ.setdefault("RAY_ENABLE_UV_RUN_RUNTIME_ENV", "0")
    os.environ.setdefault("RAY_AUTH_MODE", "disabled")
    os.environ.setdefault("TUNE_WARN_EXCESSIVE_EXPERIMENT_CHECKPOINT_SYNC_THRESHOLD_S", "0")
    keep_on_loopback()
    ray.init(address="local", num_cpus=int(gpus / GPU_PER_TRIAL * CPU_PER_TRIAL),
             num_gpus=gpus, include_dashboard=False, log_to_driver=False,
             _node_ip_address=LOOPBACK)
    return True


def slots_of(resources: dict[str, float]) -> int:
    return int(min(resources.get("CPU", 0) // CPU_PER_TRIAL,
                   resources.get("GPU", 0) // GPU_PER_TRIAL))


def trial_records(outcome, tracking_uri: str) -> list[dict[str, Any]]:
    """Per trial (seconds since the epoch): when Tune started it (its last report's time less
    Tune's `time_total_s`, counted from the first call into the trial), its stand-in's sleep
    start and end (the trial's own clock) and its MLflow child run's start and end."""
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri)
    records = []
    for result in outcome.results:
        if result.error is not None:
            raise RuntimeError(f"a trial failed: {str(result.error).strip().splitlines()[-1]}")
        config, metrics = result.config, result.metrics
        run = client.get_run(metrics["mlflow_run_id"])
        records.append({"phase": config["phase"], "unit": config["unit"],
                        "tune_start": metrics["bench/ended"] - metrics["time_total_s"],
                        "began": metrics["bench/began"], "ended": metrics["bench/ended"],
                        "run_start": run.info.start_time / 1000,
                        "run_end": run.info.end_time / 1000})
    return records


def mean(values: list[float]) -> float:
    return sum(values) / len(values) if values else 0.0


def start_latencies(records: list[dict[str, Any]], parent_start: float,
                    slots: int) -> dict[str, float]:
    """Where a trial's start goes. `first_wave`: until Tune has started as many trials as there
    are slots. `boot`: from a slot's release (a trial's end, paired in time order with the
    starts that follow the first wave) or, later, from the trial's readiness (its search's end)
    to Tune starting it: Ray placement, a worker process, imports. `setup`: from Tune's first
    call into the trial to its stand-in's sleep: the trial's MLflow run, params, the study."""
    tune_starts = sorted(r["tune_start"] for r in records)
    search_end = {r["unit"]: r["run_end"] for r in records if r["phase"] == "search"}
    later = sorted(records, key=lambda r: r["tune_start"])[slots:]
    releases = sorted(r["run_end"] for r in records)
    boot = [r["tune_start"] - max(release, search_end.get(r["unit"], parent_start)
                                  if r["phase"] == "retrain" else parent_start)
            for r, release in zip(later, releases)]
    return {"first_wave": tune_starts[min(slots, len(tune_starts)) - 1] - parent_start,
            "boot": mean(boot), "setup": mean([r["began"] - r["tune_start"] for r in records])}


def measured(records: list[dict[str, Any]], parent_start: float, units: list[Unit],
             slots: int) -> dict[str, Any]:
    """The makespan and where the time went, from the trials' own timestamps."""
    searches = {r["unit"]: r for r in records if r["phase"] == "search"}
    waits = [r["began"] - searches[r["unit"]]["run_end"] for r in records
             if r["phase"] == "retrain"]
    known = {unit.name: unit for unit in units}
    overrun = [r["ended"] - r["began"] - (known[r["unit"]].search_s if r["phase"] == "search"
                                          else known[r["unit"]].retrain_s[0]) for r in records]
    return {
        "measured_s": max(r["run_end"] for r in records) - parent_start,
        "sleep_span_s": max(r["ended"] for r in records) - min(r["began"] for r in records),
        "start_overhead_s": start_latencies(records, parent_start, slots),
        "retrain_wait_s": {"mean": mean(waits), "max": max(waits, default=0.0)},
        "end_overhead_s": mean([r["run_end"] - r["ended"] for r in records]),
        "sleep_overrun_s": mean(overrun),
    }


def busy_cpu_s() -> float | None:
    """Seconds of CPU the whole machine has spent busy since boot (Linux), else None."""
    try:
        with open("/proc/stat") as stat:
            ticks = [int(value) for value in stat.readline().split()[1:]]
    except (OSError, ValueError):
        return None
    return (sum(ticks) - ticks[3] - ticks[4]) / os.sysconf("SC_CLK_TCK")  # less idle, iowait


def run_bench_study(size: str, folder: Path) -> dict[str, Any]:
    """Run the bench study on its own local Ray (or the running one); what the figure needs."""
    from mlflow.tracking import MlflowClient

    from orchestrator.run import RunOptions, run_study
    from orchestrator.study import validate
    from trainables.tune import Loops

    spec = SIZES[size]
    study = validate(study_dict(size), "bench study")
    loops = Loops(search=SleepSearch(spec.step_s, bench_genotype(study)),
                  retrain=SleepRetrain(spec.step_s))
    uri = f"sqlite:///{folder / 'mlflow.db'}"
    began = time.perf_counter()
    started = start_local_ray(spec.gpus)
    try:
        ray_start_s = time.perf_counter() - began
        slots = slots_of(ray.cluster_resources())
        called, cpu_before = time.time(), busy_cpu_s()
        outcome = run_study(study, RunOptions(uri, str(folder / "runs"), verbose=0), loops)
        returned, cpu_after = time.time(), busy_cpu_s()
    finally:
        if started:
            ray.shutdown()
    parent = MlflowClient(uri).get_run(outcome.parent_run_id)
    return {"records": trial_records(outcome, uri), "slots": slots,
            "units": planned_units(study, spec.step_s), "ray_start_s": ray_start_s,
            "parent_start": parent.info.start_time / 1000, "called": called,
            "returned": returned,
            "busy_cpu_s": None if cpu_before is None else cpu_after - cpu_before}


def rounded(value: Any) -> Any:
    if isinstance(value, dict):
        return {key: rounded(item) for key, item in value.items()}
    return round(value, 2) if isinstance(value, float) else value


def study_schedule_efficiency(size: str = "quick") -> dict:
    spec = SIZES[size]
    load_before = load_average()
    with tempfile.TemporaryDirectory(prefix="bench-schedule-") as folder:
        run = run_bench_study(size, Path(folder))
    units, slots, records = run["units"], run["slots"], run["records"]
    expected = len(units) * (1 + len(spec.noises))
    if len(records) != expected:
        raise RuntimeError(f"{len(records)} trials finished, expected {expected}")
    ideal = ideal_makespan(units, slots)
    found = measured(records, run["parent_start"], units, slots)
    cores = os.cpu_count() or 1
    cpu = {"cores": cores, "busy_core_s": run["busy_cpu_s"]}
    if run["busy_cpu_s"] is not None:  # what the whole machine spent per trial (Ray included)
        cpu["per_trial_s"] = run["busy_cpu_s"] / len(records)
        cpu["model_makespan_s"] = simulate(units, slots, "longest_chain",
                                           cpu["per_trial_s"], cores)
    detail = {
        "measured": "from the study's parent MLflow run start (Ray up, just before the Tune "
                    "experiment) to the end of its last child run",
        "units": len(units), "slots": slots, "arms": spec.arms, "seeds": len(spec.seeds),
        "retrains_per_unit": len(spec.noises), "trials": len(records),
        **ideal, **found,
        "utilisation": ideal["total_work_s"] / (slots * found["measured_s"]),
        "zero_cost_ratio": {policy: ideal["ideal_s"] / simulate(units, slots, policy)
                            for policy in POLICIES},
        "cpu": cpu,
        "run_study_s": run["returned"] - run["called"],
        "parent_start_after_call_s": run["parent_start"] - run["called"],
        "ray_start_s": run["ray_start_s"],
        "step_s": spec.step_s, "search_epochs": spec.search_epochs,
        "retrain_epochs": spec.retrain_epochs, "size": size,
        "load_average_before": load_before, "load_average_after": load_average(),
    }
    return {"name": "study_schedule_efficiency",
            "value": round(ideal["ideal_s"] / found["measured_s"], 3), "unit": "ratio",
            "target": 0.85, "detail": rounded(detail)}
