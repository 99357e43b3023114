"""What both Ray Tune adapters share: the trial's MLflow child run, checkpoints, reporting.

A trial restored by Tune finds its checkpoint, which carries the MLflow run id,
so a resumed trial reopens its own child run instead of creating a second one.
Metrics go to MLflow before the checkpoint goes to Tune (an interrupted trial
logs twice rather than never); a resumed trial does not log again the epochs its
run already has (kept: the values of the first pass).
"""

from __future__ import annotations

import json
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from ray import tune

from searchspaces.registry import get_space
from trainables.loops import protocol_hash
from trainables.tracking import (
    RENAME_TAG,
    Tracker,
    logged_params,
    node_tags,
    record_texts,
    run_name,
    with_arch,
)
from trainables.tune.nospace import (
    NoSpace,
    no_space,
    out_of_space,
    trial_folder,
    wait_to_be_stopped,
)

STATE_FILE = "state.pt"
RESULT_FILE = "unit_result.json"  # the trial's last report to Tune (what a cached unit gives)
RUN_FILE = "mlflow_run.json"
EPOCH_METRIC = "train/loss"  # reported every epoch by both loops


@dataclass(frozen=True)
class TrialContext:
    """Plain data the driver hands every trial of a study (via tune.with_parameters)."""

    tracking_uri: str
    experiment_id: str
    parent_run_id: str
    study: str
    data_manifest: str | None = None  # hash of the arm's data (trainables.tracking.reproducibility)
    data_seed: int | None = None  # the arm's study seed, which split its data
    param_keys: tuple[str, ...] = ()  # logged besides FILTER_KEYS (trainables.tracking.display)
    # the study's commit, dirty flag, package set and dataset hashes (trainables.tracking)
    provenance: dict[str, str] = field(default_factory=dict)
    spool_root: str | None = None  # unsent MLflow writes: in the study's storage if local


class TrialSession:
    def __init__(self, tracker: Tracker, run_id: str, state: dict[str, Any] | None,
                 logged_through: int = -1, name: str | None = None):
        self.tracker, self.run_id, self.state = tracker, run_id, state
        self.logged_through = logged_through  # last epoch the MLflow run already has
        self.name = name  # the run's name before its architecture is known
        self.last_result: dict[str, Any] | None = None

    @classmethod
    def open(cls, context: TrialContext, phase: str, config: dict[str, Any],
             params: dict[str, Any], tags: dict[str, Any] | None = None) -> TrialSession:
        """The trial's child run: reopened from the checkpoint (or, restarted before its
        first checkpoint, found by its trial id), else created with the trial config's
        `labels` (group, seed, unit, ...) as tags."""
        tracker = Tracker(context.tracking_uri, spool_under=context.parent_run_id,
                          spool_root=context.spool_root)
        name = run_name(config, phase, params)
        checkpoint = tune.get_checkpoint()
        if checkpoint is not None:
            with checkpoint.as_directory() as folder:
                run_id = json.loads((Path(folder) / RUN_FILE).read_text())["run_id"]
                state = torch.load(Path(folder) / STATE_FILE, weights_only=True)
            raise_recorded_failure(tracker, run_id)
            tracker.reopen(run_id)
            tracker.set_tags(run_id, node_tags())  # restarted, maybe on another node
            return cls(tracker, run_id, state, tracker.last_step(run_id, EPOCH_METRIC), name)
        trial_id = tune.get_context().get_trial_id()
        earlier = tracker.trial_run(context.experiment_id, context.parent_run_id, trial_id)
        if earlier is not None:  # started before an interruption, no checkpoint yet
            raise_recorded_failure(tracker, earlier)
            tracker.reopen(earlier)
            tracker.set_tags(earlier, node_tags())
            return cls(tracker, earlier, None, tracker.last_step(earlier, EPOCH_METRIC), name)
        method = params["search_space"]["name"]
        all_tags = {"study": context.study, "arm": config["arm"], "method": method,
                    "phase": phase, "trial_id": trial_id, "eval_protocol": protocol_hash(),
                    **context.provenance, **config.get("labels", {}), **(tags or {}),
                    **({"cache_key": config["cache_key"]} if config.get("cache_key") else {}),
                    **node_tags()}
        run_id = tracker.start_run(context.experiment_id, name, all_tags, context.parent_run_id)
        tracker.log_params(run_id, logged_params(params, phase, context.param_keys))
        for file, text in record_texts(config, params, phase, context.data_manifest,
                                       context.data_seed).items():
            tracker.log_text(run_id, text, file)
        return cls(tracker, run_id, None, name=name)

    def report(self, epoch: int, metrics: dict[str, float], state: dict[str, Any],
               extra: dict[str, Any] | None = None) -> None:
        """Log metrics to MLflow (unless the run has this epoch), then hand metrics +
        checkpoint to Tune."""
        if epoch > self.logged_through:
            self.tracker.log_metrics(self.run_id, metrics, step=epoch)
        with tempfile.TemporaryDirectory() as folder:
            try:
                torch.save(state, Path(folder) / STATE_FILE)
                (Path(folder) / RUN_FILE).write_text(json.dumps({"run_id": self.run_id}))
            except OSError as error:
                raise (no_space(error, folder) if out_of_space(error) else error) from error
            result = {**metrics, **(extra or {}), "epoch": epoch, "mlflow_run_id": self.run_id}
            self.last_result = result
            try:
                tune.report(result, checkpoint=tune.Checkpoint.from_directory(folder))
            except OSError as error:  # copying the checkpoint into the study's storage
                if not out_of_space(error):
                    raise
                raise no_space(error, trial_folder(), f"the checkpoint of epoch {epoch}") \
                    from error

    def log_genotype(self, genotype) -> None:
        """genotype.json, a readable architecture description, the arch_hash tag, and the
        run's name ending in the hash's prefix."""
        self.tracker.log_text(self.run_id, genotype.to_json() + "\n", "genotype.json")
        description = get_space(genotype.space).describe(genotype)
        self.tracker.log_text(self.run_id, description + "\n", "architecture.txt")
        tags = {"arch_hash": genotype.arch_hash()}
        if self.name is not None and with_arch(self.name, genotype.arch_hash()) != self.name:
            tags[RENAME_TAG] = with_arch(self.name, genotype.arch_hash())
        self.tracker.set_tags(self.run_id, tags)
        # numbers the space derived with the architecture (e.g. MoD-NAS params_full_width)
        self.tracker.log_metrics(self.run_id, {f"genotype/{key}": value for key, value
                                               in genotype.provenance.items()}, step=0)

    def finish(self, status: str = "FINISHED") -> None:
        self.tracker.finish(self.run_id, status)


class RecordedFailure(RuntimeError):
    """A retried trial whose previous attempt raised: the error is deterministic (divergence,
    bad config), so Tune's retry ends at once with the recorded reason instead of rerunning.
    Retries are for lost workers and nodes, which record no reason."""


# not failures but interruptions: Tune stopping the trial (its thread leaves through
# SystemExit when the study is stopped), Ctrl-C; the trial continues on `--resume`
INTERRUPTIONS = ("SystemExit", "KeyboardInterrupt", "GeneratorExit")


def raise_recorded_failure(tracker: Tracker, run_id: str) -> None:
    """Raise RecordedFailure when the run's previous attempt failed (an interruption, also
    one recorded as a failure by earlier versions, is not a failure)."""
    failure = tracker.client.get_run(run_id).data.tags.get("failure")
    if failure is not None and failure.split(":")[0] not in INTERRUPTIONS:
        raise RecordedFailure(f"not retried, the previous attempt failed: {failure}")


def run_in_session(session: TrialSession, work) -> Any:
    """Run `work()`; mark the child run FAILED with the reason as a tag (and re-raise). Out
    of space, the trial asks the driver to stop the study instead (`trainables.tune.nospace`)
    and fails only when it is not stopped."""
    try:
        result = work()
    except BaseException as raised:
        if not isinstance(raised, Exception):  # stopped, not failed: KILLED, resumable
            reason = f"{type(raised).__name__}: {raised}"
            session.tracker.set_tags(session.run_id, {"interrupted": reason})
            session.finish("KILLED")
            raise
        error = raised
        if out_of_space(raised):
            error = raised if isinstance(raised, NoSpace) else no_space(raised)
            try:
                session.tracker.set_tags(session.run_id, {"stopped": str(error)})
            except OSError:  # the spool may be on the full disk too
                pass
            wait_to_be_stopped(error)  # returns only when the driver did not stop the study
        reason = (str(error).splitlines() or [""])[0][:500]
        session.tracker.set_tags(session.run_id, {"failure": f"{type(error).__name__}: {reason}"})
        session.finish("FAILED")
        raise error from (None if error is raised else raised)
    if session.last_result is not None:  # for a later study's result cache
        session.tracker.log_text(session.run_id, json.dumps(session.last_result), RESULT_FILE)
    session.finish()
    return result
