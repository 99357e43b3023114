"""A study from start to end: arms -> search stage -> best genotypes -> retrain stage -> table.

The parent MLflow run of the invocation is created first and stays open while
trials attach their child runs; its id is kept in the storage folder so that
`--resume` reopens the same parent and Tune restores each unfinished stage.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path

import ray
import yaml

from orchestrator.arms import Arm, checked_arms
from orchestrator.data import resolved_roots, stage_data
from orchestrator.report import results_rows, write_tables
from orchestrator.stages import best_candidates, retrain_stage, search_stage
from orchestrator.studyfile import StudyError
from studyspec.schema import Study
from trainables.evaluation import protocol_hash
from trainables.tracking import Tracker, default_tracking_uri, study_params
from trainables.tune_session import TrialContext

INVOCATION_FILE = "invocation.json"


@dataclass(frozen=True)
class RunOptions:
    tracking_uri: str | None = None  # default: the study's, else ./mlflow.db
    storage: str = "./runs"  # Tune experiment folders (checkpoints), one per stage
    address: str | None = None  # a running Ray cluster; None starts a local one
    resume: bool = False
    source: str = "study"  # the study file, for messages
    verbose: int = 1


def resolve_uri(study: Study, options: RunOptions) -> str:
    return options.tracking_uri or study.tracking.uri or default_tracking_uri()


def open_parent(tracker: Tracker, study: Study, folder: Path, resume: bool) -> tuple[str, str]:
    """(experiment id, parent run id), reopening the saved parent run on resume."""
    experiment_id = tracker.experiment_id(study.tracking.experiment or study.name)
    saved = folder / INVOCATION_FILE
    fingerprint = hashlib.sha256(study.model_dump_json().encode()).hexdigest()[:16]
    if resume and saved.is_file():
        invocation = json.loads(saved.read_text())
        if invocation.get("study_hash") != fingerprint:
            raise StudyError(f"{saved}: the study differs from the interrupted one; resume "
                             "with the same file, --profile and --set values")
        tracker.reopen(invocation["parent_run_id"])
        return experiment_id, invocation["parent_run_id"]
    tags = {"study": study.name, "phase": "study", "method": study.search_space.name,
            "eval_protocol": protocol_hash()}
    parent_id = tracker.start_run(experiment_id, study.name, tags)
    folder.mkdir(parents=True, exist_ok=True)
    saved.write_text(json.dumps({"parent_run_id": parent_id, "experiment_id": experiment_id,
                                 "study_hash": fingerprint}))
    resolved = study.model_dump(mode="json")
    tracker.log_params(parent_id, study_params(resolved))
    tracker.log_text(parent_id, yaml.safe_dump(resolved, sort_keys=False), "study.yaml")
    return experiment_id, parent_id


def start_ray(address: str | None) -> None:
    if ray.is_initialized():
        return
    os.environ.setdefault("RAY_ENABLE_UV_RUN_RUNTIME_ENV", "0")
    # a checkpoint per epoch is the point: do not warn about the snapshots it triggers
    os.environ.setdefault("TUNE_WARN_EXCESSIVE_EXPERIMENT_CHECKPOINT_SYNC_THRESHOLD_S", "0")
    if address:
        if address.split(":")[0] in ("127.0.0.1", "localhost"):
            keep_on_loopback()  # a test cluster started with --node-ip-address 127.0.0.1
        ray.init(address=address, log_to_driver=False)
        return
    keep_on_loopback()
    # address="local": never reuse a stale cluster file (SPEC 5.5)
    ray.init(address="local", include_dashboard=False, log_to_driver=False,
             _node_ip_address=LOOPBACK)


LOOPBACK = "127.0.0.1"


def keep_on_loopback() -> None:
    """A local cluster binds and advertises 127.0.0.1 only.

    Ray 2.60 replaces a loopback node IP by the machine's external address unless
    it believes it is not a cluster; this flag (read by the driver at call time and
    by the processes ray.init spawns, through the environment) makes it keep 127.0.0.1.
    """
    from ray._private import ray_constants

    os.environ["RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"] = "0"
    ray_constants.ENABLE_RAY_CLUSTER = False


def prepare_arms(study: Study, source: str) -> list[tuple[Arm, Study, tuple]]:
    """Every arm's validated study and data, before anything runs or is logged (fail fast)."""
    return [(arm, resolved, stage_data(resolved))
            for arm, resolved in checked_arms(study, source)]


def run_arm(arm: Arm, study: Study, data: tuple, base: TrialContext, folder: Path,
            options: RunOptions):
    """Search and retrain one arm; returns the retrain stage's results."""
    study_dict = study.model_dump(mode="json")
    context = TrialContext(**{**vars(base), "arm": arm.name})
    search_data, retrain_data = data
    searched = search_stage(study, study_dict, search_data, context, folder, options.resume,
                            options.verbose)
    candidates = best_candidates(searched, study.tune.metric, study.tune.mode,
                                 study.retrain.top_k)
    if not candidates:
        errors = [str(r.error).splitlines()[-1] for r in searched if r.error is not None]
        why = f" (first error: {errors[0]})" if errors else ""
        raise TrialsFailed(f"arm '{arm.name}': no search trial finished with a genotype{why}")
    return retrain_stage(study, study_dict, retrain_data, context, candidates, folder,
                         options.resume, options.verbose)


class TrialsFailed(RuntimeError):
    """Every trial of a stage failed; their child runs in MLflow say why."""


class ResourceError(ValueError):
    """A study asks for resources the Ray cluster does not have."""


def check_resources(arms: list[tuple[Arm, Study, tuple]], available: dict[str, float]) -> None:
    """Fail before logging anything when a trial could never be scheduled."""
    for arm, study, _ in arms:
        for phase in ("search", "retrain"):
            wanted = getattr(study.resources, phase)
            for kind, amount in (("cpu", wanted.cpu), ("gpu", wanted.gpu)):
                have = available.get(kind.upper(), 0)
                if amount > have:
                    raise ResourceError(
                        f"arm '{arm.name}': resources.{phase}.{kind}: {amount:g} per trial "
                        f"but the Ray cluster has {have:g} (try --set resources.{phase}.{kind}="
                        f"{have:g})")


def run_study(study: Study, options: RunOptions) -> list[dict]:
    """Run every arm; log the results table to the parent run and return its rows."""
    arms = prepare_arms(study, options.source)
    started = not ray.is_initialized()
    start_ray(options.address)
    status, rows = "FAILED", []
    try:
        check_resources(arms, ray.cluster_resources())
        uri = resolve_uri(study, options)
        tracker = Tracker(uri)
        folder = Path(options.storage).resolve() / study.name
        experiment_id, parent_id = open_parent(tracker, study, folder, options.resume)
        base = TrialContext(uri, experiment_id, parent_id, study.name, "",
                            study.search_space.name)
        roots = {name: root for _, resolved, _ in arms
                 for name, root in resolved_roots(resolved).items()}
        tracker.set_tags(parent_id, {f"data_root.{name}": root for name, root in roots.items()})
        try:
            for arm, resolved, data in arms:
                rows += results_rows(arm.name, run_arm(arm, resolved, data, base, folder,
                                                       options))
            status = "FINISHED"
        except KeyboardInterrupt:
            status = "KILLED"
            raise
        finally:
            if rows:  # what finished is kept, whatever happened later
                write_tables(tracker, parent_id, rows)
            tracker.finish(parent_id, status)
    finally:
        if started and ray.is_initialized():
            ray.shutdown()
    return rows
