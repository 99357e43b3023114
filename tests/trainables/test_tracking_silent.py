"""A tracking server behind a dead network path: connections are accepted and read, and
nothing ever answers (a loopback proxy in front of a real `mlflow server` stops forwarding).
A trial's logging call waits a few seconds at most before its writes go to the spool; the
trials and the study end normally and report what is undelivered; `sync` delivers it once
the server answers again."""

import socket
import threading
import time

import pytest

from orchestrator.cli import main
from tests.trainables.test_tracking_outage import Trial, assert_arrived
from trainables.tracking.outbox import Patience
from trainables.tracking.runs import Tracker

pytestmark = pytest.mark.slow  # starts an MLflow server

SLOWEST_CALL_S = 10.0
SILENT_STEPS = 3


class SilentProxy:
    """Forwards loopback TCP to `target_port`; while `silent`, accepts and reads connections
    (new and open ones) and forwards nothing in either direction."""

    def __init__(self, target_port: int):
        self.target_port, self.silent = target_port, False
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        threading.Thread(target=self.accept, daemon=True).start()

    @property
    def uri(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def accept(self) -> None:
        while True:
            client, _ = self.listener.accept()
            threading.Thread(target=self.serve, args=(client,), daemon=True).start()

    def serve(self, client: socket.socket) -> None:
        if self.silent:
            self.pump(client, None)
            return
        server = socket.create_connection(("127.0.0.1", self.target_port))
        threading.Thread(target=self.pump, args=(server, client), daemon=True).start()
        self.pump(client, server)

    def pump(self, source: socket.socket, sink: socket.socket | None) -> None:
        try:
            while data := source.recv(65536):
                if sink is not None and not self.silent:
                    sink.sendall(data)
        except OSError:
            pass
        finally:
            for end in (source, sink):
                if end is not None:
                    end.close()


def test_a_server_that_never_answers_costs_seconds_and_sync_delivers(mlflow_server, spool_env,
                                                                     capsys):
    mlflow_server.start()
    mlflow_server.wait()
    proxy = SilentProxy(mlflow_server.port)
    quick = Patience(read=30.0, finish=2.0, retry_every=1.0)  # call: the shipped default
    driver = Tracker(proxy.uri, patience=quick)
    experiment_id = driver.experiment_id("silent")
    parent = driver.start_run(experiment_id, "study", {"phase": "study"})
    trials = [Trial(Tracker(proxy.uri, spool_under=parent, patience=quick),
                    driver.start_run(experiment_id, name, {"phase": "search"}, parent))
              for name in ("a", "b")]
    for trial in trials:
        trial.step()
    proxy.silent = True
    started = time.monotonic()
    for _ in range(SILENT_STEPS):
        for trial in trials:
            trial.step()
        time.sleep(0.3)
    silent_for = time.monotonic() - started
    ending = time.monotonic()
    left = [trial.tracker.finish(trial.run_id) for trial in trials]  # the trials end normally
    assert driver.finish(parent) == sum(left) > 0  # the study counts what they left
    ended_in = time.monotonic() - ending
    slowest = max(trial.slowest for trial in trials)
    assert slowest < SLOWEST_CALL_S, slowest
    err = capsys.readouterr().err
    assert "does not answer" in err and "were not delivered" in err

    proxy.silent = False
    assert main(["sync", "--storage", str(spool_env.parent / "no-storage")]) == 0
    out = capsys.readouterr().out
    assert f"delivered {sum(left)} metric values of study run {parent}" in out, out
    client = Tracker(proxy.uri).client
    for trial in trials:
        assert_arrived(client, trial)
    assert client.get_run(parent).info.status == "FINISHED"
    assert client.get_run(parent).data.tags["tracking.undelivered_metrics"] == "0"
    assert not (spool_env / parent).exists()
    with capsys.disabled():  # shown with -s
        print(f"\nsilent for {silent_for:.1f} s ({SILENT_STEPS} steps of 2 trials), slowest "
              f"logging call {slowest:.2f} s, trials and study ended in {ended_in:.1f} s")
