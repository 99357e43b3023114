"""`python -m orchestrator rerun RUN`: a trial run relaunched from what it logged.

The run's `config.json` holds its resolved study (arm overrides, seed and Optuna picks
applied) and its Tune config; `reproducibility.json` the seed that split the data. From
them a study of one arm, one seed and no tuning is made and run as any study is, into the
same experiment (a new parent run tagged `rerun_of`):
- a retrain run: that genotype (`runs:/<run>/genotype.json`) retrained at the same
  degradation and seed, then tested; a network that inherited its supernet's weights
  (`retrain.from: inherit`) comes with its search: the unit is run again, search and all;
- a search run: that arm's search at that seed, search only.
Package versions, device and commit are not restored: before it starts, `rerun` prints a
line for each way they (or the datasets, or the evaluation protocol) differ from what the
run recorded (`differences.py`), and `--strict` refuses to start when any does.
"""

from __future__ import annotations

import argparse
import copy
from typing import Any

import yaml
from mlflow.entities import Run
from mlflow.tracking import MlflowClient

from orchestrator.commands.differences import differences
from orchestrator.commands.runs import (
    RunError,
    find_run,
    run_config,
    run_label,
    run_record,
    trial_study,
)
from orchestrator.run import RunOptions, run_study
from orchestrator.study import StudyError
from studyspec.schema import Study
from studyspec.starts import start_of
from trainables.tracking import Tracker

NO_TUNING = {"space": {}, "num_samples": 1, "start_from": [], "objectives": None,
             "scheduler": None}


def rerun_arm(run_id: str, trial: dict[str, Any], inherits: bool = False) -> dict[str, Any]:
    arm = {"name": trial["arm"]} if trial["arm"] else {"name": "default"}
    if trial["phase"] == "retrain" and inherits:
        return arm  # its weights come from a search: search and distil again
    if trial["phase"] == "retrain":
        return {**arm, "genotype": f"runs:/{run_id}/genotype.json"}
    return {**arm, "retrain": False}


def rerun_study(run_id: str, config: dict[str, Any], data_seed: int | None) -> dict[str, Any]:
    """The study of one arm and seed that repeats the trial."""
    trial, study = config["trial"], copy.deepcopy(trial_study(config))
    inherits = start_of(study.get("search_space"),
                        study.get("retrain", {}).get("from")) == "inherit"
    study.update(seed=trial["seed"] if data_seed is None else data_seed, seeds=[trial["seed"]],
                 profiles={}, groups={}, arms={"named": [rerun_arm(run_id, trial, inherits)]},
                 tune={**study.get("tune", {}), **NO_TUNING})
    study["description"] = f"rerun of run {run_id}"
    if trial["phase"] == "retrain":
        study["retrain"] = {**study["retrain"], "noise": [trial["noise"]]}
    return study


def planned_study(client: MlflowClient, run_id: str) -> tuple[dict[str, Any], Run, dict | None]:
    """The rerun's study, the run and its reproducibility record."""
    run = find_run(client, run_id)
    phase = run.data.tags.get("phase")
    if phase not in ("search", "retrain"):
        raise RunError(f"{run_label(run)} is not a search or retrain run (phase '{phase}'); "
                       "rerun one of its trial runs")
    record = run_record(client, run)
    seed = (record or {}).get("seeds", {}).get("data_split")
    return rerun_study(run_id, run_config(client, run), seed), run, record


def rerun_command(uri: str, run_id: str, args: argparse.Namespace) -> str:
    """Run (or, with --dry-run, print) the rerun study; a line naming the new parent run."""
    raw, run, record = planned_study(MlflowClient(uri), run_id)
    if args.data_root:
        raw["data"] = {**raw["data"], "root": args.data_root}
    try:
        study = Study.model_validate(raw)
    except ValueError as error:
        raise StudyError(f"rerun of run {run_id}: {str(error).splitlines()[0]}") from None
    if args.dry_run:
        return yaml.safe_dump(study.model_dump(mode="json"), sort_keys=False).rstrip()
    changed = differences(run, record, study)
    for line in changed:
        print(f"rerun of run {run_id}: differs: {line}", flush=True)
    if changed and args.strict:
        raise RunError(f"rerun of run {run_id}: --strict and {len(changed)} difference(s) "
                       "from what the run ran with (listed above); not started")
    options = RunOptions(uri, args.storage, source=f"rerun of run {run_id}",
                         verbose=args.verbose, command=("rerun", run_id),
                         no_cache=True)  # a rerun recomputes, it does not look up
    outcome = run_study(study, options)
    Tracker(uri).set_tags(outcome.parent_run_id, {"rerun_of": run_id})
    return (f"rerun of run {run_id}: parent run {outcome.parent_run_id} in study "
            f"{study.name}, {outcome.finished} retrained network(s)")
