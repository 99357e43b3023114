"""MLflow layout (docs/mlflow.md): one experiment per study, a parent run per invocation,
a nested child run per Tune trial and phase.

Used by the driver (parent run, results table) and inside trials (child runs),
always through `MlflowClient` with explicit run ids, so concurrent trials never
share the fluent API's global "active run".

A tracking server that is down loses nothing: writes it does not answer are
queued in order in a local spool and sent when it answers again
(`trainables.tracking.outbox`); what is still unsent at a run's end is reported
on stderr, and the study's end sends or reports what its trials left. Reads the
logic needs (run ids, last logged step) wait up to `Patience.read` for it.
"""

from __future__ import annotations

import os
import tempfile
import time
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from mlflow.tracking import MlflowClient

from studyspec.dotted import flatten
from trainables.tracking.outbox import (
    TIMEOUT_ENV,
    Outbox,
    Patience,
    PatientClient,
    say,
    unreachable,
)
from trainables.tracking.store import artifact_root_for

PARAM_BATCH = 100  # MLflow's limit of params per log_batch call
METRIC_BATCH = 1000
# MLflow's own patience with one HTTP request: by default 7 retries with backoff and 120 s
# for each answer, so a refused connection blocks a call for about 4 minutes and a server
# that accepts and never answers for 16. Here no retry (the outbox retries, queueing
# meanwhile: `trainables.tracking.outbox`) and `Patience.call` seconds for the answer (an
# artifact's upload gets more, by its size). A value set in the environment wins.
HTTP_RETRIES = {"MLFLOW_HTTP_REQUEST_MAX_RETRIES": "0", "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR": "1"}
PATIENCE = Patience()


def flat_params(tree: Mapping[str, Any]) -> dict[str, str]:
    """Dotted keys, values as strings (MLflow params are immutable strings)."""
    return {key: str(value)[:6000] for key, value in flatten(tree)}



def metric_items(metrics: Mapping[str, Any]) -> Iterable[tuple[str, float]]:
    for key, value in metrics.items():
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            yield key, float(value)




class Tracker:
    """Thin, explicit-id wrapper over MlflowClient for our run tree: writes go through an
    `Outbox` (queued while the server does not answer), reads through `client`, which waits
    up to `patience.read` for the server.

    `spool_under` names the study's parent run, whose spool folder keeps this tracker's
    unsent writes (a trial's); without it each run is its own study (the driver's). The
    folders are under `spool_root` (the study's storage, which every node sees) unless
    `$NAS_TRACKING_SPOOL` is set; without either, in the user's cache."""

    def __init__(self, uri: str, spool_under: str | None = None,
                 patience: Patience = PATIENCE, spool_root: str | None = None):
        if uri.startswith(("http://", "https://")):
            for key, value in {**HTTP_RETRIES, TIMEOUT_ENV: f"{patience.call:g}"}.items():
                os.environ.setdefault(key, value)
        self.uri = uri
        self.outbox = Outbox(MlflowClient(tracking_uri=uri), uri, spool_under, patience,
                             spool_root)
        self.client = PatientClient(self.outbox.client, patience.read)

    def experiment_id(self, name: str) -> str:
        found = self.client.get_experiment_by_name(name)
        if found is not None:
            return found.experiment_id
        return self.client.create_experiment(name, artifact_location=artifact_root_for(self.uri))

    def start_run(self, experiment_id: str, name: str, tags: Mapping[str, str],
                  parent_id: str | None = None) -> str:
        tags = {key: str(value) for key, value in tags.items()}
        if parent_id is not None:
            tags["mlflow.parentRunId"] = parent_id
        return self.client.create_run(experiment_id, run_name=name, tags=tags).info.run_id

    def reopen(self, run_id: str) -> None:
        self.outbox.write(run_id, {"status": "RUNNING"})

    def log_params(self, run_id: str, tree: Mapping[str, Any]) -> None:
        """Log only the params the run does not have yet (resume-safe)."""
        have = {*self.client.get_run(run_id).data.params,
                *self.outbox.spool(run_id).param_keys(run_id)}  # sent or queued
        items = [[k, v] for k, v in flat_params(tree).items() if k not in have]
        for start in range(0, len(items), PARAM_BATCH):
            self.outbox.write(run_id, {"params": items[start : start + PARAM_BATCH]})

    def log_metrics(self, run_id: str, metrics: Mapping[str, Any], step: int) -> None:
        now = now_ms()
        items = [[k, v, now, step] for k, v in metric_items(metrics)]
        for start in range(0, len(items), METRIC_BATCH):
            self.outbox.write(run_id, {"metrics": items[start : start + METRIC_BATCH]})

    def last_step(self, run_id: str, key: str) -> int:
        """Highest step logged for metric `key` in the run (sent or queued), -1 when none."""
        history = self.client.get_metric_history(run_id, key)
        sent = max((m.step for m in history), default=-1)
        return max(sent, self.outbox.spool(run_id).last_step(run_id, key))

    def set_tags(self, run_id: str, tags: Mapping[str, Any]) -> None:
        self.outbox.write(run_id, {"tags": [[k, str(v)] for k, v in tags.items()]})

    def log_text(self, run_id: str, text: str, artifact_file: str) -> None:
        self.log_bytes(run_id, text.encode(), artifact_file)

    def log_file(self, run_id: str, path: str | Path, artifact_path: str | None = None) -> None:
        self.outbox.write(run_id, {"artifact": artifact_path or "", "local": str(path)})

    def log_bytes(self, run_id: str, data: bytes, artifact_file: str) -> None:
        """Store `data` as the artifact `artifact_file` (e.g. "weights/model.pt")."""
        folder, _, name = artifact_file.rpartition("/")
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / name
            path.write_bytes(data)
            self.log_file(run_id, path, folder or None)

    def finish(self, run_id: str, status: str = "FINISHED") -> int:
        """End the run, sending what is queued (waiting up to `patience.finish`); returns the
        metric values still unsent (reported on stderr). The study's parent run also sends
        what its trials left queued, and tags their count."""
        return self.outbox.finish(run_id, status, now_ms())

    def end(self, run_id: str, status: str) -> None:
        """Set another process's run's status (e.g. KILLED when its trial was stopped)."""
        self.outbox.write(run_id, {"status": status, "end_time": now_ms()})

    def trial_run(self, experiment_id: str, parent_id: str, trial_id: str) -> str | None:
        """The child run a Tune trial already has, if any (a restarted trial reuses it)."""
        query = (f"tags.mlflow.parentRunId = '{parent_id}' and tags.trial_id = '{trial_id}' "
                 "and tags.dedup_of IS NULL")
        runs = self.client.search_runs([experiment_id], filter_string=query, max_results=1)
        return runs[0].info.run_id if runs else None

    @contextmanager
    def unless_unreachable(self, what: str) -> Iterator[None]:
        """Skip `what` (with a line on stderr) when the server does not answer."""
        try:
            yield
        except Exception as error:
            if not unreachable(error):
                raise
            say(f"{what} not written: {self.uri} does not answer")


CACHED_FROM = "cached_from"  # a run whose unit an earlier study computed: that run's id


def artifact_run(client: Any, run_id: str, tags: Mapping[str, str] | None = None) -> str:
    """The run whose artifacts `run_id` has: itself, or for a cached run the original (its
    artifacts are linked, not copied: `orchestrator.run.cache`)."""
    if not run_id:
        return run_id
    tags = client.get_run(run_id).data.tags if tags is None else tags
    return tags.get(CACHED_FROM) or run_id


def now_ms() -> int:
    return int(time.time() * 1000)
