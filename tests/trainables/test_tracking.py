"""MLflow layout pieces without Ray: parent run, resume, params once, metrics by step."""

from pathlib import Path

import pytest

from orchestrator.run.preparing import RunOptions
from orchestrator.run.runner import open_parent
from orchestrator.study.reading import StudyError, validate
from trainables.tracking.runs import Tracker, flat_params
from trainables.tracking.store import artifact_root_for, default_tracking_uri, prepare_local_store

STUDY = {"name": "tracked", "search_space": {"name": "hinas", "options": {"num_layers": 2}}}


@pytest.fixture(scope="module")
def tracker(tmp_path_factory):
    """One store for the module: creating an MLflow SQLite schema takes seconds."""
    return Tracker(f"sqlite:///{tmp_path_factory.mktemp('mlflow') / 'mlflow.db'}")


def test_parent_run_is_reopened_on_resume_and_refused_when_study_changed(tracker, tmp_path):
    study = validate(STUDY)
    experiment_id, parent_id = open_parent(tracker, study, tmp_path / "runs", RunOptions())
    run = tracker.client.get_run(parent_id)
    assert run.data.tags["phase"] == "study" and run.data.params["search_space.name"] == "hinas"
    assert "study.yaml" in [a.path for a in tracker.client.list_artifacts(parent_id)]
    tracker.finish(parent_id, "KILLED")
    again = open_parent(tracker, study, tmp_path / "runs", RunOptions(resume=True))
    assert again == (experiment_id, parent_id)
    assert tracker.client.get_run(parent_id).info.status == "RUNNING"
    changed = validate({**STUDY, "seed": 1})
    with pytest.raises(StudyError, match="differs"):
        open_parent(tracker, changed, tmp_path / "runs", RunOptions(resume=True))
    fresh = open_parent(tracker, study, tmp_path / "runs", RunOptions())
    assert fresh[1] != parent_id


def test_params_are_logged_once_and_metrics_by_step(tracker):
    experiment_id = tracker.experiment_id("exp")
    run_id = tracker.start_run(experiment_id, "child", {"phase": "search"}, parent_id=None)
    tracker.log_params(run_id, {"search": {"epochs": 3}, "data": {"test": ["set12"]}})
    tracker.log_params(run_id, {"search": {"epochs": 3, "batch_size": 2}})  # resume-safe
    assert tracker.client.get_run(run_id).data.params == {
        "search.epochs": "3", "data.test": "['set12']", "search.batch_size": "2"}
    tracker.log_metrics(run_id, {"val/psnr": 20.0, "genotype": "{...}", "flag": True}, step=0)
    tracker.log_metrics(run_id, {"val/psnr": 21.0}, step=1)
    history = tracker.client.get_metric_history(run_id, "val/psnr")
    assert [(m.step, m.value) for m in history] == [(0, 20.0), (1, 21.0)]
    assert set(tracker.client.get_run(run_id).data.metrics) == {"val/psnr"}


def test_artifacts_live_beside_a_sqlite_store(tmp_path):
    assert artifact_root_for(f"sqlite:///{tmp_path}/m.db") == (tmp_path / "mlartifacts").as_uri()
    assert artifact_root_for("http://127.0.0.1:5000") is None
    assert flat_params({"a": {"b": [1, 2]}}) == {"a.b": "[1, 2]"}


def test_the_default_store_keeps_database_and_artifacts_in_one_ignored_folder(tmp_path):
    uri = default_tracking_uri(tmp_path)
    assert uri == f"sqlite:///{tmp_path / 'mlruns-local' / 'mlflow.db'}"
    assert artifact_root_for(uri) == (tmp_path / "mlruns-local" / "artifacts").as_uri()
    prepare_local_store(uri)
    assert (tmp_path / "mlruns-local").is_dir()
    ignored = (Path(__file__).resolve().parents[2] / ".gitignore").read_text().splitlines()
    assert "/mlruns-local/" in ignored and "/mlartifacts/" in ignored


def test_a_resumed_trial_does_not_log_an_epoch_twice(tracker, monkeypatch):
    from trainables.tune import session as tune_session

    reported = []
    monkeypatch.setattr(tune_session.tune, "report", lambda result, checkpoint: reported.append(
        result["epoch"]))
    run_id = tracker.start_run(tracker.experiment_id("resume"), "trial", {}, parent_id=None)
    assert tracker.last_step(run_id, "train/loss") == -1
    first = tune_session.TrialSession(tracker, run_id, None)
    for epoch in range(3):  # killed after MLflow had epoch 2, before Tune kept its checkpoint
        first.report(epoch, {"train/loss": 1.0 + epoch}, {})
    resumed = tune_session.TrialSession(tracker, run_id, {}, tracker.last_step(run_id,
                                                                               "train/loss"))
    for epoch in range(2, 4):  # Tune restarts after the checkpoint of epoch 1
        resumed.report(epoch, {"train/loss": 10.0 + epoch}, {})
    history = tracker.client.get_metric_history(run_id, "train/loss")
    assert sorted((m.step, m.value) for m in history) == [(0, 1.0), (1, 2.0), (2, 3.0),
                                                           (3, 13.0)]
    assert reported == [0, 1, 2, 2, 3]  # Tune still gets every epoch and checkpoint


def test_a_trial_finds_the_run_it_started_before_an_interruption(tracker):
    experiment_id = tracker.experiment_id("restarts")
    parent = tracker.start_run(experiment_id, "p", {"phase": "study"})
    own = tracker.start_run(experiment_id, "a/s0/search", {"trial_id": "t1"}, parent)
    tracker.start_run(experiment_id, "b/s0/retrain", {"trial_id": "t1", "dedup_of": own},
                      parent)  # a dedup link copies its source's trial id: never reused
    tracker.start_run(experiment_id, "other", {"trial_id": "t1"})  # another parent's
    assert tracker.trial_run(experiment_id, parent, "t1") == own
    assert tracker.trial_run(experiment_id, parent, "t2") is None


def test_a_stopped_trial_is_killed_and_resumable_but_a_failed_one_is_not_retried(tracker):
    """Tune stops a trial's thread with SystemExit when the study is stopped (SIGTERM): that
    run is KILLED with the reason as `interrupted` and a resumed attempt continues it; an
    exception is a failure, recorded, and the next attempt ends at once with its reason.
    A `failure` tag "SystemExit: 0" written by an earlier version is read as an interruption
    too (a study stopped under it resumes)."""
    from trainables.tune import session as tune_session

    experiment_id = tracker.experiment_id("stops")

    def attempt(raised):
        run_id = tracker.start_run(experiment_id, "a/s0/search", {})
        session = tune_session.TrialSession(tracker, run_id, None)

        def work():
            raise raised
        with pytest.raises(type(raised)):
            tune_session.run_in_session(session, work)
        return run_id, tracker.client.get_run(run_id)

    stopped, run = attempt(SystemExit(0))
    assert run.info.status == "KILLED" and run.data.tags["interrupted"] == "SystemExit: 0"
    assert "failure" not in run.data.tags
    tune_session.raise_recorded_failure(tracker, stopped)  # resumable: does not raise

    failed, run = attempt(ValueError("loss diverged: 3.2e6 at epoch 2"))
    assert run.info.status == "FAILED"
    assert run.data.tags["failure"] == "ValueError: loss diverged: 3.2e6 at epoch 2"
    with pytest.raises(tune_session.RecordedFailure, match="loss diverged"):
        tune_session.raise_recorded_failure(tracker, failed)

    legacy = tracker.start_run(experiment_id, "b/s0/search", {"failure": "SystemExit: 0"})
    tune_session.raise_recorded_failure(tracker, legacy)
