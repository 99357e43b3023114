"""A tracking server that goes down while trials log, and comes back, loses nothing, against a
real `mlflow server` on loopback; one that never comes back is reported, not raised. The
outage lasts until the trials have failed to send several times (counted, not timed)."""

import time

import pytest
from mlflow.exceptions import MlflowException

from trainables.tracking.outbox import Patience, merged
from trainables.tracking.runs import Tracker
from trainables.tracking.spool import Spool

pytestmark = pytest.mark.slow  # starts an MLflow server that goes away

FAILED_SENDS = 4  # the long trial's failed attempts (one per retry_every) before the restart
QUICK = Patience(read=60.0, finish=60.0, retry_every=1.0)


class Trial:
    """A training loop's logging: two metrics and a progress tag per epoch."""

    def __init__(self, tracker: Tracker, run_id: str):
        self.tracker, self.run_id, self.epoch, self.slowest = tracker, run_id, 0, 0.0

    def step(self) -> None:
        started = time.monotonic()
        self.tracker.log_metrics(self.run_id, {"train/loss": 1.0 / (self.epoch + 1),
                                               "val/psnr": 20.0 + self.epoch}, self.epoch)
        self.tracker.set_tags(self.run_id, {"progress": self.epoch})
        self.slowest = max(self.slowest, time.monotonic() - started)
        self.epoch += 1


def assert_arrived(client, trial: Trial) -> None:
    for key in ("train/loss", "val/psnr"):
        steps = sorted(m.step for m in client.get_metric_history(trial.run_id, key))
        assert steps == list(range(trial.epoch)), key  # every step, once
    run = client.get_run(trial.run_id)
    assert run.data.tags["progress"] == str(trial.epoch - 1)  # the last value, sent in order
    assert run.data.metrics["val/psnr"] == 20.0 + trial.epoch - 1
    assert run.info.status == "FINISHED"


def failed_sends(tracker: Tracker, monkeypatch) -> list[float]:
    """The times at which `tracker` found the server down (appended as it happens)."""
    failures: list[float] = []
    original = tracker.outbox.server_down

    def counted(error, spool):
        failures.append(time.monotonic())
        original(error, spool)

    monkeypatch.setattr(tracker.outbox, "server_down", counted)
    return failures


def test_a_server_that_goes_down_and_comes_back_loses_nothing(mlflow_server, spool_env, capsys,
                                                               monkeypatch):
    server = mlflow_server
    server.start()
    startup = server.wait()
    driver = Tracker(server.uri, patience=QUICK)
    experiment_id = driver.experiment_id("outage")
    parent = driver.start_run(experiment_id, "study", {"phase": "study"})
    trials = [Trial(Tracker(server.uri, spool_under=parent, patience=patience),
                    driver.start_run(experiment_id, name, {"phase": "search"}, parent))
              for name, patience in (("long", QUICK), ("short", Patience(finish=1.0)))]
    long, short = trials
    long.tracker.log_params(long.run_id, {"search": {"epochs": 3}})
    for trial in trials:
        trial.step()
    failures = failed_sends(long.tracker, monkeypatch)
    server.kill()
    down = time.monotonic()
    while len(failures) < FAILED_SENDS:  # training goes on; the sends are retried
        long.step()
        short.step()
        time.sleep(0.05)
    # training did not wait for the server: between failed sends the steps only queue (one
    # attempt per retry_every, not one per step)
    assert all(later - earlier >= QUICK.retry_every
               for earlier, later in zip(failures, failures[1:])), failures
    assert long.epoch - 1 > FAILED_SENDS
    long.tracker.log_text(long.run_id, '{"space": "hinas"}\n', "genotype.json")
    # a trial that ends while the server is down: its epochs since the kill are unsent
    assert short.tracker.finish(short.run_id) == 2 * (short.epoch - 1)
    server.start()  # on the same port and store; it answers after its start-up time
    while not server.healthy():
        long.step()
        time.sleep(0.1)
    outage = time.monotonic() - down
    for _ in range(3):
        long.step()
    assert long.tracker.finish(long.run_id) == 0
    assert driver.finish(parent) == 0, capsys.readouterr().err  # sends what the short trial left
    client = driver.client
    for trial in trials:
        assert_arrived(client, trial)
    assert client.get_run(long.run_id).data.params == {"search.epochs": "3"}
    assert client.download_artifacts(long.run_id, "genotype.json", str(spool_env.parent))
    assert (spool_env.parent / "genotype.json").read_text() == '{"space": "hinas"}\n'
    assert client.get_run(parent).data.tags["tracking.undelivered_metrics"] == "0"
    assert not (spool_env / parent).exists()  # everything was sent
    assert "does not answer" in capsys.readouterr().err
    with capsys.disabled():  # shown with -s
        print(f"\nserver start-up {startup:.1f} s, outage {outage:.1f} s, slowest step "
              f"{long.slowest:.2f} s, {long.epoch} epochs")


def test_a_server_that_never_comes_back_is_reported_not_raised(mlflow_server, spool_env, capsys):
    uri = mlflow_server.uri  # never started: nothing listens there
    patience = Patience(read=1.0, finish=1.0, retry_every=0.5)
    parent, child = "a" * 32, "b" * 32
    trial = Trial(Tracker(uri, spool_under=parent, patience=patience), child)
    for _ in range(20):
        trial.step()
    trial.tracker.log_text(child, "{}\n", "genotype.json")
    assert trial.tracker.finish(child, "FINISHED") == 40
    driver = Tracker(uri, patience=patience)
    assert driver.finish(parent, "FINISHED") == 40  # the study counts what its trials left
    err = capsys.readouterr().err
    assert "40 metric values in 44 writes were not delivered" in err
    assert str(spool_env / parent) in err
    spool = Spool(spool_env / parent)
    pending = spool.pending(child)
    assert [m[3] for r in pending for m in r.get("metrics", ()) if m[0] == "val/psnr"] == list(
        range(20))  # kept in order, for a resumed study to send
    assert pending[-1] == {"status": "FINISHED", "end_time": pending[-1]["end_time"]}
    assert spool.last_step(child, "train/loss") == 19
    started = time.monotonic()
    with pytest.raises(MlflowException):  # a read the logic needs waits, then raises
        trial.tracker.last_step(child, "train/loss")
    assert time.monotonic() - started < 10.0
    with driver.unless_unreachable("the results tables"):
        driver.client.get_run(parent)
    assert "the results tables not written" in capsys.readouterr().err


def test_queued_writes_merge_into_batches_in_order():
    records = [{"metrics": [["a", 1.0, 0, 0]]}, {"tags": [["p", "0"]]},
               {"metrics": [["a", 2.0, 0, 1]]}, {"tags": [["p", "1"]]},
               {"params": [["x", "1"]]}, {"params": [["x", "1"]]}, {"status": "FINISHED"}]
    count, batch = merged(records)
    assert count == 5 and batch == {"metrics": [["a", 1.0, 0, 0], ["a", 2.0, 0, 1]],
                                    "params": [["x", "1"]], "tags": [["p", "1"]]}
    assert merged(records[5:]) == (1, {"params": [["x", "1"]]})
    assert merged(records[6:]) == (1, {"status": "FINISHED"})
    many = [{"metrics": [["a", 0.0, 0, step] for step in range(600)]}] * 2
    assert merged(many)[0] == 1  # MLflow takes 1000 metrics per request
