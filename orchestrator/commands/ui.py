"""`python -m orchestrator ui`: the MLflow UI of a tracking store on 127.0.0.1, opened on the
runs table of a study's experiment (parent run and nested trial runs).

The server (`mlflow server`) runs as a child in its own process group, so that Ctrl-C or
a SIGTERM to this process stops the server and every worker it started, and nothing else.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from typing import IO

from mlflow.tracking import MlflowClient

from orchestrator.commands.runs import RunError, study_experiment
from trainables.tracking import artifact_root_for

HOST = "127.0.0.1"
READY_TIMEOUT_S = 120.0
STOP_TIMEOUT_S = 10.0
# MLflow 3 opens an experiment on its GenAI overview unless it knows the experiment trains
# models; this tag (the one the UI's own "experiment type" choice writes) says so.
KIND_TAG, MODEL_KIND = "mlflow.experimentKind", "custom_model_development"


def runs_table_url(port: int, experiment_id: str) -> str:
    """The runs tab of the experiment (route `/experiments/:experimentId/runs`) as a table:
    each study (parent) run, its trial runs nested under it (its + button)."""
    return f"http://{HOST}:{port}/#/experiments/{experiment_id}/runs?compareRunsMode=TABLE"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind((HOST, 0))
        return probe.getsockname()[1]


def server_command(uri: str, port: int) -> list[str]:
    command = [sys.executable, "-m", "mlflow", "server", "--host", HOST, "--port", str(port),
               "--backend-store-uri", uri, "--workers", "1"]
    root = artifact_root_for(uri)
    return command + (["--default-artifact-root", root] if root else [])


def mark_model_experiment(client: MlflowClient, experiment_id: str) -> None:
    tags = client.get_experiment(experiment_id).tags
    if KIND_TAG not in tags:
        client.set_experiment_tag(experiment_id, KIND_TAG, MODEL_KIND)


def last_line(log: IO[bytes]) -> str:
    log.seek(0)
    lines = [line.strip() for line in log.read().decode(errors="replace").splitlines()]
    return next((line for line in reversed(lines) if line), "")[:200]


def wait_ready(process: subprocess.Popen, port: int, log: IO[bytes],
               timeout: float = READY_TIMEOUT_S) -> None:
    """Until the server answers /health; one line when it exits or never answers."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RunError(f"mlflow server on port {port} exited with code "
                           f"{process.returncode}: {last_line(log)}")
        try:
            with urllib.request.urlopen(f"http://{HOST}:{port}/health", timeout=2) as answer:
                if answer.status == 200:
                    return
        except OSError:
            time.sleep(0.5)
    raise RunError(f"mlflow server did not answer on {HOST}:{port} within {timeout:.0f} s")


def stop_group(process: subprocess.Popen) -> None:
    """SIGTERM to the server's process group, SIGKILL after STOP_TIMEOUT_S."""
    if process.poll() is not None:
        return
    for sent in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.killpg(process.pid, sent)
        except ProcessLookupError:
            return
        try:
            process.wait(STOP_TIMEOUT_S)
            return
        except subprocess.TimeoutExpired:
            continue


@contextmanager
def sigterm_as_interrupt() -> Iterator[None]:
    """A SIGTERM to this process ends it the way Ctrl-C does (the server is stopped)."""
    def interrupt(signum, frame):
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def serve_ui(uri: str, port: int = 5000, study: str | None = None) -> int:
    """Start the server, print the runs table's URL, serve until Ctrl-C / SIGTERM."""
    client = MlflowClient(uri)
    experiment_id = study_experiment(client, study)
    mark_model_experiment(client, experiment_id)
    port = port or free_port()
    with sigterm_as_interrupt(), tempfile.TemporaryFile() as log:
        process = subprocess.Popen(server_command(uri, port), start_new_session=True,
                                   stdout=log, stderr=subprocess.STDOUT)
        try:
            wait_ready(process, port, log)
            print(runs_table_url(port, experiment_id), flush=True)
            print("Ctrl-C stops the UI", file=sys.stderr, flush=True)
            return process.wait()
        except KeyboardInterrupt:
            return 0
        finally:
            stop_group(process)
