"""`images` (four embedded grey training photographs) and `runtime` (one CPU) for the loop
tests; `mlflow_server`: a real `mlflow server` on loopback for the outage tests, SQLite store and
artifacts in the test's folder, started in its own process group (killing the group kills its
workers); not started until the test says so."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from trainables.data.embedded import embedded_images
from trainables.loops import devices


@pytest.fixture
def spool_env(tmp_path, monkeypatch):
    """The tracking spool in the test's folder; MLflow's HTTP settings restored after."""
    from trainables.tracking.outbox import TIMEOUT_ENV
    from trainables.tracking.runs import HTTP_RETRIES
    from trainables.tracking.spool import SPOOL_ENV

    monkeypatch.setenv(SPOOL_ENV, str(tmp_path / "spool"))
    for key in [*HTTP_RETRIES, TIMEOUT_ENV]:  # the Tracker sets them
        monkeypatch.delenv(key, raising=False)
    return tmp_path / "spool"


@pytest.fixture(scope="module")
def images():
    return embedded_images("train", color=False)[:4]


@pytest.fixture(scope="module")
def runtime():
    return devices.configure(1, 0)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class MlflowServer:
    def __init__(self, folder: Path, port: int | None = None):
        self.folder, self.port = folder, port or free_port()
        self.process: subprocess.Popen | None = None

    @property
    def uri(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        """Start the server (it answers /health some seconds later, see `wait`)."""
        command = [sys.executable, "-m", "mlflow", "server", "--host", "127.0.0.1",
                   "--port", str(self.port), "--workers", "1",
                   "--backend-store-uri", f"sqlite:///{self.folder / 'mlflow.db'}",
                   "--artifacts-destination", str(self.folder / "artifacts")]
        log = (self.folder / "server.log").open("a")
        quiet = {**os.environ, "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"}  # 2 processes, not 11
        self.process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT,
                                        env=quiet, start_new_session=True)

    def healthy(self) -> bool:
        try:
            with urllib.request.urlopen(f"{self.uri}/health", timeout=1) as answer:
                return answer.status == 200
        except OSError:
            return False

    def wait(self, timeout: float = 90.0) -> float:
        """Seconds until /health answers."""
        started = time.monotonic()
        while not self.healthy():
            if self.process is not None and self.process.poll() is not None:
                raise RuntimeError(f"mlflow server exited, see {self.folder / 'server.log'}")
            if time.monotonic() - started > timeout:
                raise TimeoutError(f"mlflow server not up in {timeout} s")
            time.sleep(0.2)
        return time.monotonic() - started

    def kill(self) -> None:
        """SIGKILL the server's process group (the one it started in)."""
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()
        self.process = None


@pytest.fixture
def mlflow_server(tmp_path):
    server = MlflowServer(tmp_path)
    yield server
    server.kill()
