"""A tracking server behind a dead network path: connections are accepted and read, and
nothing ever answers (a loopback proxy in front of a real `mlflow server` stops forwarding).
A trial's logging call waits a few seconds at most before its writes go to the spool; the
trials and the study end normally and report what is undelivered; `sync` delivers it once
the server answers again."""

import time

import pytest

from orchestrator.cli import main
from tests.tracking_proxy import TrackingProxy
from tests.trainables.test_tracking_outage import Trial, assert_arrived
from trainables.tracking.outbox import Patience
from trainables.tracking.runs import Tracker

pytestmark = pytest.mark.slow  # starts an MLflow server

SLOWEST_CALL_S = 10.0
SILENT_STEPS = 3


def test_a_server_that_never_answers_costs_seconds_and_sync_delivers(mlflow_server, spool_env,
                                                                     capsys):
    mlflow_server.start()
    mlflow_server.wait()
    proxy = TrackingProxy(mlflow_server.port)
    quick = Patience(read=30.0, finish=2.0, retry_every=1.0)  # call: the shipped default
    driver = Tracker(proxy.uri, patience=quick)
    experiment_id = driver.experiment_id("silent")
    parent = driver.start_run(experiment_id, "study", {"phase": "study"})
    trials = [Trial(Tracker(proxy.uri, spool_under=parent, patience=quick),
                    driver.start_run(experiment_id, name, {"phase": "search"}, parent))
              for name in ("a", "b")]
    for trial in trials:
        trial.step()
    proxy.set("silent")
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

    proxy.set("forward")
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
