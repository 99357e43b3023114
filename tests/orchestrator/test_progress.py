"""The console's status lines per arm, from fake Tune trials and results (no Ray run)."""

from dataclasses import dataclass, field

import pytest

from orchestrator.run.console import start_lines
from orchestrator.run.preparing import plan_arms
from orchestrator.run.progress import ProgressLines, clock_text
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
    # same work (20 s); each trial's fixed part (1 s until one has finished), its running
    # search's and its retrain's: 32 s. b's search has reported nothing: at the study's rate,
    # 4 + 4 epochs (40 s) and two fixed parts: 42 s. (32 + 42) s over 2 trials at once: 37 s.
    assert lines == ["[0:10] a: 1 running, 0 done, 0 failed; best val/psnr 21.50 dB (search); "
                     "study ~0:37 left"]
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
    # a's retrain has 3 of 4 epochs to go at its own 5 s, and its fixed part (1 s: no retrain
    # has ended yet): 16 s over 2 slots; b's failed search retrains nothing
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


PROXY = {**STUDY, "arms": {"named": [{"name": "a"}]},
         "retrain": {**STUDY["retrain"], "proxy": {"steps": 5, "keep": 1}},
         "tune": {"num_samples": 3, "space": {"search.loss.ssim_lambda": {
             "type": "float", "low": 0.0, "high": 1.0}}}}


def test_proxy_retrainings_are_counted_at_their_own_steps_and_fixed_parts_measured():
    """A tuned arm of 3 candidates with `retrain.proxy: {steps: 5, keep: 1}`: 3 searches of
    40 steps, 3 short retrainings of 5 steps, 1 full one of 40, all at 2 x 24 x 24."""
    plans = plan_arms(validate(PROXY), "progress.yaml")
    lines, clock = [], Clock()
    callback = ProgressLines(plans, interval=10.0, clock=clock, write=lines.append, slots=2)
    search = FakeTrial("t1", {"arm": "a", "phase": "search", "unit": "a/t0/s0"})
    trials = [search]
    callback.on_trial_start(0, trials, search)
    clock.now += 5
    result(callback, trials, search, 0, 20.0)
    clock.now += 5
    result(callback, trials, search, 1, 21.5)
    # 0.5 s a step (an epoch of 10 in 5 s). Left: 120 - 20 search steps (50 s), 3 x 5 short
    # (7.5 s) and 40 full retraining steps (20 s); 7 trials' fixed parts of 1 s (the running
    # one, 2 searches, 4 retrainings): 84.5 s over 2 slots
    assert lines[-1].endswith("study ~0:42 left")
    clock.now += 1
    callback.on_trial_complete(0, trials, search)  # 1 s beyond its epochs
    short = FakeTrial("t2", {"arm": "a", "phase": "retrain", "unit": "a/t0/s0",
                             "labels": {"proxy": "short", "retrain_steps": 5}})
    trials.append(short)
    callback.on_trial_start(0, trials, short)
    clock.now += 5
    result(callback, trials, short, 0, 19.0, seconds=5.0)  # 1 s a step: retraining is slower
    clock.now += 4
    callback.on_trial_complete(0, trials, short)  # its test sets and plots: 4 s
    # left: 80 search steps at 0.5 s (40 s) and 2 fixed parts of 1 s (the searches' measured
    # part); 10 short steps and 40 full ones at 1 s (50 s) and 3 fixed parts of 4 s (12 s):
    # 104 s over 2 slots
    assert lines[-1] == ("[0:20] a: 0 running, 2 done, 0 failed; best val/psnr 19.00 dB "
                         "(retrain); study ~0:52 left")


def test_a_search_epoch_of_images_counts_the_steps_its_data_gives():
    """`search.epoch: images`: 12 embedded images split into 6 Train-W, so 3 steps of batch
    2 an epoch. A search epoch of 6 s is 2 s a step; the retraining (4 x 10 steps of the
    same batch and patch, not measured yet) at that rate: 80 s; the search's 3 epochs
    left, 9 steps: 18 s; a fixed part each: 100 s in all."""
    from orchestrator.run.preparing import prepare_arms

    raw = {"name": "images", "data": {"train": "embedded", "test": ["embedded"],
                                      "patch_size": 24, "max_train_images": 12},
           "search_space": {"name": "hinas", "options": {"num_layers": 2, "num_nodes": 2}},
           "search": {"epoch": "images", "epochs": 4, "warmup_epochs": 1, "batch_size": 2},
           "retrain": {"epochs": 4, "steps_per_epoch": 10, "batch_size": 2}}
    prepared = prepare_arms(validate(raw), "images.yaml")
    assert len(prepared.data["default"].search.train_w) == 6
    lines, clock = [], Clock()
    callback = ProgressLines(prepared.plans, interval=10.0, clock=clock, write=lines.append)
    search = FakeTrial("t1", {"arm": "default", "phase": "search", "unit": "default/s0"})
    callback.on_trial_start(0, [search], search)
    clock.now += 11
    result(callback, [search], search, 0, 20.0, seconds=6.0)
    assert lines[-1].endswith("study ~1:40 left")


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
