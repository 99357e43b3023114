"""Failing trials through the CLI: a diverging study exits 2 with the first reason on one line
and a FAILED parent; a diverging arm fails alone and the table marks it; a killed worker's
trial restarts from its checkpoint in the same MLflow run."""

from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient

from orchestrator.cli import main

pytestmark = [pytest.mark.slow,  # starts studies through Ray Tune with injected faults
              pytest.mark.usefixtures("shared_ray")]


def run_study(tmp_path: Path, text: str) -> tuple[int, MlflowClient, list]:
    """Run a study file's text through the CLI: the exit code, the MLflow client, its runs."""
    study = tmp_path / "study.yaml"
    study.write_text(text)
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    code = main(["study", str(study), "--tracking-uri", uri, "--storage",
                 str(tmp_path / "runs"), "--verbose", "0"])
    client = MlflowClient(uri)
    name = next(line.split(":", 1)[1].strip() for line in text.splitlines()
                if line.startswith("name:"))
    return code, client, client.search_runs([client.get_experiment_by_name(name).experiment_id])


# variant paper: the code variant's sigmoid output keeps even lr 1000 finite
DIVERGING = """
name: diverging
data: {train: embedded, test: [embedded], patch_size: 24, max_train_images: 6}
search_space: {name: hinas, options: {num_layers: 2, num_nodes: 2, width: 4, stem_channels: 8,
                                      variant: paper}}
search: {epochs: 2, steps_per_epoch: 3, batch_size: 2, warmup_epochs: 0, val_crop: 32,
         weight_optimizer: {name: sgd, lr: 1000}, grad_clip_norm: null}
retrain: {epochs: 1, steps_per_epoch: 2, batch_size: 2, cost: {input_size: 64, repeats: 1}}
"""


def test_every_search_diverging_fails_the_study(tmp_path, capsys):
    code, _, runs = run_study(tmp_path, DIVERGING)
    assert code == 2
    error = capsys.readouterr().err.strip().splitlines()[-1]
    assert error.startswith("error: every search trial failed") and "diverged" in error
    status = {run.data.tags["phase"]: run.info.status for run in runs}
    assert status == {"study": "FAILED", "search": "FAILED"}
    (search,) = [run for run in runs if run.data.tags["phase"] == "search"]
    assert search.data.tags["failure"].startswith("FloatingPointError: train/loss diverged at step")


ONE_DIVERGES = """
name: one-diverges
data: {train: embedded, test: [embedded], patch_size: 24, max_train_images: 6}
search_space: {name: hinas, options: {num_layers: 2, num_nodes: 2, width: 4, stem_channels: 8}}
search: {epochs: 3, steps_per_epoch: 3, batch_size: 2, warmup_epochs: 1, val_crop: 32}
retrain: {epochs: 1, steps_per_epoch: 2, batch_size: 2, cost: {input_size: 64, repeats: 1}}
groups: {g: {title: One arm diverges}}
arms:
  named:
    - {name: steady, group: g}
    - {name: diverging, group: g, set: {search.weight_optimizer.lr: 1000,
                                        search.grad_clip_norm: null,
                                        search_space.options.variant: paper}}
"""


def test_a_diverging_trial_fails_alone_and_the_table_marks_it(tmp_path):
    """The diverging arm's search stops in its first epoch, is FAILED with the reason (not
    retried: its retry ends at once), the other arm is searched and retrained, the command
    succeeds and the group's table marks the failed row."""
    code, client, runs = run_study(tmp_path, ONE_DIVERGES)
    assert code == 0
    status = {(run.data.tags["arm"] if "arm" in run.data.tags else "", run.data.tags["phase"]):
              run.info.status for run in runs}
    assert status == {("", "study"): "FINISHED", ("steady", "search"): "FINISHED",
                      ("steady", "retrain"): "FINISHED", ("diverging", "search"): "FAILED"}
    (diverged,) = [run for run in runs if run.data.tags.get("arm") == "diverging"]
    assert diverged.data.tags["failure"].startswith("FloatingPointError: train/loss diverged")
    assert client.get_metric_history(diverged.info.run_id, "train/loss") == []  # stopped at once
    (parent,) = [run for run in runs if run.data.tags["phase"] == "study"]
    table = Path(client.download_artifacts(parent.info.run_id, "results/g.md")).read_text()
    assert "| diverging |" in table and "| 1: FloatingPointError: train/loss diverged" in table


KILLED = """
name: killed
data: {train: embedded, test: [embedded], patch_size: 24, max_train_images: 6}
search_space: {name: hinas, options: {num_layers: 2, num_nodes: 2, width: 4, stem_channels: 8}}
search: {epochs: 4, steps_per_epoch: 3, batch_size: 2, warmup_epochs: 1, val_crop: 32}
retrain: {epochs: 1, steps_per_epoch: 2, batch_size: 2, cost: {input_size: 64, repeats: 1}}
"""


def test_a_killed_worker_resumes_its_trial_from_the_checkpoint(tmp_path, faults, monkeypatch,
                                                              own_ray):
    """(Last in this file: its study starts a Ray cluster of its own, whose workers inherit the
    fault hook.)
    The search's worker SIGKILLs itself when epoch 2 is in MLflow but not checkpointed:
    Tune restarts the trial (tune.max_failures) in a new process from epoch 1's checkpoint,
    in the same MLflow run, which ends FINISHED with every epoch once."""
    for key, value in faults.env("kill", 2).items():
        monkeypatch.setenv(key, value)  # inherited by the Ray workers this study starts
    code, client, runs = run_study(tmp_path, KILLED)
    assert code == 0
    assert {run.info.status for run in runs} == {"FINISHED"}
    (search,) = [run for run in runs if run.data.tags["phase"] == "search"]
    steps = [m.step for m in client.get_metric_history(search.info.run_id, "val/psnr")]
    assert sorted(steps) == [0, 1, 2, 3]
    reports = [(pid, epoch) for pid, run, epoch in faults.attempts()
               if run == search.info.run_id]
    first, second = reports[0][0], reports[-1][0]
    assert first != second  # a new worker process
    assert [epoch for pid, epoch in reports if pid == first] == [0, 1, 2]
    assert [epoch for pid, epoch in reports if pid == second] == [2, 3]
