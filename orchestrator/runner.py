"""A study from start to end: arms -> search stage -> best genotypes -> retrain stage -> table.

The parent MLflow run of the invocation is created first and stays open while
trials attach their child runs; its id is kept in the storage folder so that
`--resume` reopens the same parent and Tune restores each unfinished stage.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

import ray
import yaml

from orchestrator.arms import Arm, arm_study, expand_arms
from orchestrator.data import stage_data
from orchestrator.report import results_rows, write_tables
from orchestrator.schema import Study
from orchestrator.stages import best_candidates, retrain_stage, search_stage
from orchestrator.tracking import Tracker, default_tracking_uri
from trainables.evaluation import protocol_hash
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
    if resume and saved.is_file():
        parent_id = json.loads(saved.read_text())["parent_run_id"]
        tracker.reopen(parent_id)
        return experiment_id, parent_id
    tags = {"study": study.name, "phase": "study", "method": study.search_space.name,
            "eval_protocol": protocol_hash()}
    parent_id = tracker.start_run(experiment_id, study.name, tags)
    folder.mkdir(parents=True, exist_ok=True)
    saved.write_text(json.dumps({"parent_run_id": parent_id, "experiment_id": experiment_id}))
    resolved = study.model_dump(mode="json")
    tracker.log_params(parent_id, {k: v for k, v in resolved.items() if k != "profiles"})
    tracker.log_text(parent_id, yaml.safe_dump(resolved, sort_keys=False), "study.yaml")
    return experiment_id, parent_id


def start_ray(address: str | None) -> None:
    if ray.is_initialized():
        return
    os.environ.setdefault("RAY_ENABLE_UV_RUN_RUNTIME_ENV", "0")
    if address:
        ray.init(address=address, log_to_driver=False)
    else:  # never reuse a stale cluster file (SPEC 5.5); loopback only
        ray.init(address="local", include_dashboard=False, log_to_driver=False,
                 _node_ip_address="127.0.0.1")


def run_arm(study: Study, arm: Arm, base: TrialContext, folder: Path, options: RunOptions):
    """Search and retrain one arm; returns the retrain stage's results."""
    study = arm_study(study, arm, options.source)
    study_dict = study.model_dump(mode="json")
    context = TrialContext(**{**vars(base), "arm": arm.name})
    search_data, retrain_data = stage_data(study)
    searched = search_stage(study, study_dict, search_data, context, folder, options.resume,
                            options.verbose)
    candidates = best_candidates(searched, study.tune.metric, study.tune.mode,
                                 study.retrain.top_k)
    if not candidates:
        raise RuntimeError(f"arm '{arm.name}': no search trial finished with a genotype")
    return retrain_stage(study, study_dict, retrain_data, context, candidates, folder,
                         options.resume, options.verbose)


def run_study(study: Study, options: RunOptions) -> list[dict]:
    """Run every arm; log the results table to the parent run and return its rows."""
    arms = expand_arms(study)
    uri = resolve_uri(study, options)
    tracker = Tracker(uri)
    folder = Path(options.storage).resolve() / study.name
    experiment_id, parent_id = open_parent(tracker, study, folder, options.resume)
    base = TrialContext(uri, experiment_id, parent_id, study.name, "", study.search_space.name)
    status, rows = "FAILED", []
    try:
        start_ray(options.address)
        for arm in arms:
            retrained = run_arm(study, arm, base, folder, options)
            rows += results_rows(arm.name, retrained)
        write_tables(tracker, parent_id, rows)
        status = "FINISHED"
    except KeyboardInterrupt:
        status = "KILLED"
        raise
    finally:
        tracker.finish(parent_id, status)
        if rows and status != "FINISHED":
            write_tables(tracker, parent_id, rows)  # keep what finished before the failure
    return rows
