"""Delivery of MLflow writes to a tracking server that may be down for a while.

A write goes out at once while nothing is queued before it for its run; when the
server does not answer (refused, reset, timed out, kept answering 5xx) it is
queued, in order, in the study's spool (`trainables.tracking.spool`), and the
caller goes on: a training loop does not stall for an outage. The queue is sent
at the next write once `Patience.retry_every` has passed (for at most
`SEND_BUDGET` seconds, so a long queue does not stall a step either) and at the
run's end, waiting up to `Patience.finish`; what is still unsent is reported on
stderr. Resending is harmless: a queued metric keeps its timestamp, and MLflow's
SQL store drops an identical (key, value, step, timestamp) row; tags, params,
artifacts and statuses are idempotent.
"""

from __future__ import annotations

import functools
import os
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import requests
from mlflow.entities import Metric, Param, RunTag
from mlflow.tracking import MlflowClient

from trainables.tracking.spool import Record, Spool, spool_root

# what a server that does not answer raises; MLflow wraps it in an MlflowException
UNREACHABLE = (requests.exceptions.ConnectionError, requests.exceptions.Timeout,
               requests.exceptions.RetryError)
TIMEOUT_ENV = "MLFLOW_HTTP_REQUEST_TIMEOUT"  # read by MLflow at every request
UPLOAD_RATE = 2**20  # bytes per second an artifact's upload is given, besides Patience.call
SEND_BUDGET = 2.0  # seconds a write may spend sending the queue before it
LIMITS = {"metrics": 1000, "params": 100, "tags": 100}  # per log_batch request (MLflow's)


@dataclass(frozen=True)
class Patience:
    """How long tracking waits for a server that does not answer, in seconds."""

    call: float = 4.0  # one request's wait for an answer (a server that accepts and never
    #                    answers costs a write this long before it is queued)
    read: float = 120.0  # a read the logic needs (run ids, last step, ...); then it raises
    finish: float = 60.0  # at a run's end, to send what is queued; then it is reported
    retry_every: float = 10.0  # while the server is down, writes are queued, sent this often


def unreachable(error: BaseException) -> bool:
    """Did the server not answer (as opposed to answering with an error)?"""
    seen: BaseException | None = error
    while seen is not None:
        if isinstance(seen, UNREACHABLE):
            return True
        seen = seen.__cause__ or seen.__context__
    return False


def say(message: str) -> None:
    print(f"tracking: {message}", file=sys.stderr, flush=True)


class PatientClient:
    """An MlflowClient whose calls are retried while the server does not answer, for up to
    `wait` seconds (then the last error is raised)."""

    def __init__(self, client: MlflowClient, wait: float):
        self.client, self.wait = client, wait

    def __getattr__(self, name: str) -> Any:
        attribute = getattr(self.client, name)
        if not callable(attribute):
            return attribute

        @functools.wraps(attribute)
        def patiently(*args, **kwargs):
            return retry_while_unreachable(lambda: attribute(*args, **kwargs), self.wait)
        return patiently


def retry_while_unreachable(call: Callable[[], Any], wait: float) -> Any:
    deadline, pause = time.monotonic() + wait, 1.0
    while True:
        try:
            return call()
        except Exception as error:
            left = deadline - time.monotonic()
            if not unreachable(error) or left <= 0:
                raise
            time.sleep(min(pause, left))
            pause = min(2 * pause, 10.0)


class Outbox:
    """Writes to one server, in order per run, queued under `spool_under` (the study's parent
    run; without it each run keeps its own queue) while the server does not answer."""

    def __init__(self, client: MlflowClient, uri: str, spool_under: str | None,
                 patience: Patience, root: str | Path | None = None):
        self.client, self.uri, self.spool_under, self.patience = client, uri, spool_under, patience
        self.root = root  # the spool's root unless $NAS_TRACKING_SPOOL says otherwise
        self.retry_at = 0.0  # while the server is down: when to try sending again
        self.down = False

    def spool(self, run_id: str) -> Spool:
        return Spool(spool_root(self.root) / (self.spool_under or run_id))

    def write(self, run_id: str, record: Record) -> None:
        """Send `record` now if nothing is queued before it and the server is not known to be
        down; else queue it, and send the queue if it is time to try again."""
        spool = self.spool(run_id)
        if not spool.has(run_id) and time.monotonic() >= self.retry_at:
            try:
                return self.send(run_id, record)
            except Exception as error:
                if not unreachable(error):
                    raise
                self.server_down(error, spool)
        spool.note_uri(self.uri)
        spool.append(run_id, record)
        if time.monotonic() >= self.retry_at:
            self.flush(spool, run_id, time.monotonic() + SEND_BUDGET)

    def send(self, run_id: str, record: Record) -> None:
        if "status" in record:
            if record["status"] == "RUNNING":
                self.client.update_run(run_id, "RUNNING")
            else:
                self.client.set_terminated(run_id, record["status"], record.get("end_time"))
        elif "local" in record:
            with upload_time(Path(record["local"])):
                self.client.log_artifact(run_id, record["local"], record["artifact"] or None)
        else:
            self.client.log_batch(run_id, metrics=[Metric(*m) for m in record.get("metrics", ())],
                                  params=[Param(*p) for p in record.get("params", ())],
                                  tags=[RunTag(*t) for t in record.get("tags", ())])

    def flush(self, spool: Spool, run_id: str, until: float) -> bool:
        """Send the run's queue in order, as far as the server takes it and until `until`
        (monotonic); True when it is empty."""
        if not spool.has(run_id):
            return True
        with spool.locked(run_id):
            records = spool.pending(run_id)
            while records and time.monotonic() < until:
                count, batch = merged(records)
                try:
                    self.send(run_id, batch)
                except Exception as error:
                    if unreachable(error):
                        self.server_down(error, spool)
                        return False
                    say(f"the server refused a write to run {run_id} ({error}); set aside")
                    spool.refuse(run_id, records[:count], str(error)[:500])
                self.server_up()
                spool.sent(records[:count])
                records = records[count:]
                spool.keep(run_id, records)
        return not records

    def drain(self, spool: Spool, run_ids: list[str], deadline: float) -> None:
        """Send the runs' queues, trying again until they are empty or the deadline."""
        while True:
            left = [run_id for run_id in run_ids if not self.flush(spool, run_id, deadline)]
            if not left or time.monotonic() >= deadline:
                return
            time.sleep(max(0.0, min(self.patience.retry_every, deadline - time.monotonic())))

    def finish(self, run_id: str, status: str, end_time: int) -> int:
        """End the run, sending its queue (waiting up to `patience.finish`); the metric values
        still unsent. A study's parent run first sends, and tags the count of, what its
        trials left queued."""
        deadline = time.monotonic() + self.patience.finish
        spool = self.spool(run_id)
        study = spool.folder.name == run_id
        trials = [r for r in spool.runs() if r != run_id] if study else []
        self.drain(spool, trials, deadline)
        if study and spool.folder.exists():
            left, _ = spool.undelivered(trials)
            where = [["tracking.spool", str(spool.folder)]] if left else []
            self.write(run_id, {"tags": [["tracking.undelivered_metrics", str(left)], *where]})
        self.write(run_id, {"status": status, "end_time": end_time})
        self.drain(spool, [run_id], deadline)
        return self.report(spool, [*trials, run_id], study)

    def report(self, spool: Spool, run_ids: list[str], study: bool) -> int:
        metrics, writes = spool.undelivered(run_ids)
        if writes:
            say(f"{metrics} metric values in {writes} writes were not delivered to {self.uri}; "
                f"they are kept in {spool.folder} (sent when the study is resumed)")
        elif study:
            spool.remove_if_empty()
        return metrics

    def server_down(self, error: BaseException, spool: Spool) -> None:
        self.retry_at = time.monotonic() + self.patience.retry_every
        if not self.down:
            self.down = True
            say(f"{self.uri} does not answer ({type(error).__name__}); writes are queued in "
                f"{spool.folder} and sent when it answers")

    def server_up(self) -> None:
        self.retry_at = 0.0
        if self.down:
            self.down = False
            say(f"{self.uri} answers again; sending what was queued")


@contextmanager
def upload_time(path: Path) -> Iterator[None]:
    """A longer wait for the answer to an artifact's upload (the server stores it before it
    answers): the request timeout plus a second per MiB, for this call (when the timeout is
    this module's own setting, on an http(s) store)."""
    current = os.environ.get(TIMEOUT_ENV)
    try:
        size = path.stat().st_size
    except OSError:
        size = 0
    if current is None or size < UPLOAD_RATE:
        yield
        return
    os.environ[TIMEOUT_ENV] = f"{float(current) + size / UPLOAD_RATE:g}"
    try:
        yield
    finally:
        os.environ[TIMEOUT_ENV] = current


def merged(records: list[Record]) -> tuple[int, Record]:
    """How many leading records go in one log_batch request, and that request: consecutive
    metrics/params/tags writes within MLflow's limits, a tag's last value winning, a repeated
    param ending the batch. Any other record goes alone."""
    if not set(records[0]) <= set(LIMITS):
        return 1, records[0]
    batch: dict[str, dict] = {kind: {} for kind in LIMITS}
    count = 0
    for record in records:
        if not set(record) <= set(LIMITS) or not fits(batch, record):
            break
        for kind, items in record.items():
            for item in items:  # metrics by position, params and tags by key
                batch[kind][len(batch[kind]) if kind == "metrics" else item[0]] = item
        count += 1
    if count == 0:  # over the limits on its own: as it is
        return 1, records[0]
    return count, {kind: list(items.values()) for kind, items in batch.items() if items}


def fits(batch: dict[str, dict], record: Record) -> bool:
    if any(p[0] in batch["params"] for p in record.get("params", ())):
        return False
    return all(len(batch[kind]) + len(record.get(kind, ())) <= limit
               for kind, limit in LIMITS.items())
