"""The console's status lines per arm, from fake Tune trials and results (no Ray run)."""

from dataclasses import dataclass, field

import pytest

from orchestrator.run.console import start_lines
from orchestrator.run.progress import ProgressLines, clock_text
from orchestrator.run.runner import plan_arms
from orchestrator.study.reading import validate

STUDY = {
    "name": "progress", "data": {"train": "embedded", "test": ["embedded"], "patch_size": 24},
    "search_space": {"name": "hinas", "options": {"num_layers": 2, "num_nodes": 2}},
    "search": {"epochs": 4, "warmup_epochs": 1, "steps_per_epoch": 10, "batch_size": 2},
    "retrain": {"epochs": 4, "steps_per_epoch": 10, "batch_size": 2},
    "arms": {"named": [{"name": "a"}, {"name": "b"}]},
}


@dataclass
class FakeTrial:
    trial_id: str
    config: dict
    status: str = "RUNNING"
    last_result: dict = field(default_factory=dict)
    path: str = "/tmp/runs/study/trial"


class Clock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self):
        return self.now


@pytest.fixture()
def console():
    plans = plan_arms(validate(STUDY), "progress.yaml")
    lines, clock = [], Clock()
    return (ProgressLines(plans, interval=10.0, clock=clock, write=lines.append, slots=2),
            lines, clock)


def result(callback, trials, trial, epoch, psnr, seconds=5.0):
    trial.last_result = {"epoch": epoch, "val/psnr": psnr, "time/epoch_s": seconds}
    callback.on_trial_result(0, trials, trial, trial.last_result)
    callback.on_step_end(0, trials)


def test_lines_per_arm_at_a_modest_rate_with_best_psnr_and_time_left(console):
    callback, lines, clock = console
    search = FakeTrial("t1", {"arm": "a", "phase": "search", "unit": "a/s0"})
    other = FakeTrial("t2", {"arm": "b", "phase": "search", "unit": "b/s0"})
    trials = [search, other]
    for trial in trials:
        callback.on_trial_start(0, trials, trial)
    clock.now += 5
    result(callback, trials, search, 0, 20.0)
    assert lines == []  # not every result: every 10 s at most
    clock.now += 5
    result(callback, trials, search, 1, 21.5)
    # a's search: 2 of 4 epochs at 5 s each, 2 to go (10 s); its retraining, 4 epochs of the
    # same work (20 s) and a trial to start (1 s): 31 s. b's search has reported nothing: at
    # the study's rate, 4 + 4 epochs (40 s) and its retrain trial to start (1 s): 41 s.
    # (31 + 41) s over 2 trials at once: 36 s.
    assert lines == ["[0:10] a: 1 running, 0 done, 0 failed; best val/psnr 21.50 dB (search); "
                     "study ~0:36 left"]
    retrain = FakeTrial("t3", {"arm": "a", "phase": "retrain", "unit": "a/s0"})
    trials.append(retrain)
    clock.now += 2
    callback.on_trial_complete(0, trials, search)  # Tune marks it TERMINATED afterwards
    assert lines[-1].startswith("[0:12] a: 1 running, 1 done, 0 failed;")
    result(callback, trials, retrain, 0, 19.0)
    clock.now += 3
    other.status = "ERROR"
    callback.on_trial_error(0, trials, other)
    assert lines[-2] == ("b/s0 search FAILED (its MLflow run has the reason; Tune's log: "
                         "/tmp/runs/study/trial)")
    # a's retrain has 3 of 4 epochs to go at its own 5 s; b's failed search retrains nothing
    assert lines[-1] == "[0:15] b: 0 running, 0 done, 1 failed; study ~0:08 left"
    callback.on_experiment_end(trials)  # b's line did not change since
    assert lines[-1].startswith("[0:15] a: 1 running, 1 done, 0 failed; best val/psnr 19.00 dB "
                                "(retrain)")
    count = len(lines)
    callback.on_experiment_end(trials)
    assert len(lines) == count  # nothing new, nothing said
    assert all("\r" not in line for line in lines)


def test_units_the_cache_gives_are_not_waited_for():
    """The same moment as above, but b's search and retrain came from the result cache (they
    are linked, never Tune trials): only a's work is left, 31 s over 2 slots."""
    plans = plan_arms(validate(STUDY), "progress.yaml")
    lines, clock = [], Clock()
    callback = ProgressLines(plans, interval=10.0, clock=clock, write=lines.append, slots=2,
                             cached={"b": {"search": 1, "retrain": 1}})
    search = FakeTrial("t1", {"arm": "a", "phase": "search", "unit": "a/s0"})
    trials = [search]
    callback.on_trial_start(0, trials, search)
    clock.now += 5
    result(callback, trials, search, 0, 20.0)
    clock.now += 5
    result(callback, trials, search, 1, 21.5)
    assert lines == ["[0:10] a: 1 running, 0 done, 0 failed; best val/psnr 21.50 dB (search); "
                     "study ~0:16 left"]


def test_clock_text():
    assert [clock_text(s) for s in (0, 41, 725, 7387)] == ["0:00", "0:41", "12:05", "2:03:07"]


def test_start_lines_say_where_the_study_logs_and_how_to_browse():
    plans = plan_arms(validate(STUDY), "progress.yaml")
    lines = start_lines("progress", "sqlite:////w/mlruns-local/mlflow.db", "/w/runs/progress",
                        "abc123", plans)
    assert lines[0] == "study progress: 2 arm(s), 2 unit(s); MLflow parent run abc123"
    assert "sqlite:////w/mlruns-local/mlflow.db" in lines[1] and "/w/runs/progress" in lines[2]
    assert lines[3].endswith("python -m orchestrator ui --tracking-uri "
                             "sqlite:////w/mlruns-local/mlflow.db --study progress")
