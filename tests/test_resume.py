"""Kill -9 of the driver with two arms' searches in flight, then `--resume` through the CLI:
finished work is not rerun, interrupted trials continue from their checkpoints in their own
MLflow runs, nothing is lost, duplicated or left RUNNING, and the tables come out."""

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient

from orchestrator.cli import main

pytestmark = [pytest.mark.slow,  # starts studies through Ray Tune, killed and resumed
              pytest.mark.usefixtures("shared_ray")]  # the resumed one: the fault hook is gone

STUDY = """
name: resumed
data: {train: embedded, test: [embedded], patch_size: 24, max_train_images: 8,
       noise: {type: awgn, sigma: 25}}
search_space: {name: hinas, options: {num_layers: 2, num_nodes: 2, width: 4, stem_channels: 8}}
search: {epochs: 4, steps_per_epoch: 3, batch_size: 2, warmup_epochs: 1, val_crop: 32}
retrain: {epochs: 2, steps_per_epoch: 2, batch_size: 2, space_options: {width: 4},
          cost: {input_size: 64, repeats: 1}}
groups: {g: {title: Two arms}}
tune: {max_concurrent: 2}
arms:
  named:
    - {name: a, group: g}
    - {name: b, group: g, set: {search.loss.ssim_lambda: 0.0}}
"""
EPOCHS = 4


def search_steps(client: MlflowClient, experiment: str) -> dict[str, list[int]]:
    """arm -> epochs its search run has logged so far."""
    found = client.get_experiment_by_name(experiment)
    if found is None:
        return {}
    steps = {}
    for run in client.search_runs([found.experiment_id], "tags.phase = 'search'"):
        history = client.get_metric_history(run.info.run_id, "val/psnr")
        steps[run.data.tags["arm"]] = sorted(m.step for m in history)
    return steps


def kill_when_both_arms_hang(command: list[str], faults, env: dict[str, str]) -> None:
    """Start the study; once both arms' searches have logged epoch 2 to MLflow but not yet
    checkpointed it (the workers hang there), SIGKILL the driver's whole process group."""
    process = subprocess.Popen(command, start_new_session=True, stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL, env={**os.environ, **env})
    try:
        faults.wait("hang", 2, process)
    finally:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()


def test_kill_minus_nine_then_resume(tmp_path, faults):
    """Both searches are in flight with epoch 2 in MLflow and epoch 1 their last checkpoint:
    resumed, they rerun epoch 2 without logging it twice (`TrialSession.open` reads the run's
    logged steps) and go on in the same runs."""
    study = tmp_path / "resumed.yaml"
    study.write_text(STUDY)
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    args = ["study", str(study), "--tracking-uri", uri, "--storage", str(tmp_path / "runs"),
            "--verbose", "0"]
    client = MlflowClient(uri)
    kill_when_both_arms_hang([sys.executable, "-m", "orchestrator", *args], faults,
                             faults.env("hang", 2))
    assert search_steps(client, "resumed") == {"a": [0, 1, 2], "b": [0, 1, 2]}
    assert main([*args, "--resume"]) == 0

    runs = client.search_runs([client.get_experiment_by_name("resumed").experiment_id])
    phases = sorted(run.data.tags["phase"] for run in runs)
    assert phases == ["retrain", "retrain", "search", "search", "study"]
    assert {run.info.status for run in runs} == {"FINISHED"}
    assert search_steps(client, "resumed") == {"a": [0, 1, 2, 3], "b": [0, 1, 2, 3]}
    (parent,) = [run for run in runs if run.data.tags["phase"] == "study"]
    table = Path(client.download_artifacts(parent.info.run_id, "results/g.md")).read_text()
    assert "| a |" in table and "| b |" in table and table.count("(1) |") >= 4


def test_sigterm_stops_the_study_as_ctrl_c_does_then_resume(tmp_path, faults):
    """A process manager's SIGTERM to the driver (its pid only) while both searches hang at
    epoch 2: the driver saves Tune's state, stops the trials, marks the parent and trial runs
    KILLED and exits with 128 + SIGTERM; `--resume` continues from the last checkpoints in
    the same runs, every epoch logged once."""
    study = tmp_path / "resumed.yaml"
    study.write_text(STUDY)
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    args = ["study", str(study), "--tracking-uri", uri, "--storage", str(tmp_path / "runs"),
            "--verbose", "0"]
    process = subprocess.Popen([sys.executable, "-m", "orchestrator", *args],
                               start_new_session=True, stdout=subprocess.DEVNULL,
                               stderr=subprocess.PIPE, text=True,
                               env={**os.environ, **faults.env("hang", 2)})
    try:
        faults.wait("hang", 2, process)
        process.send_signal(signal.SIGTERM)
        _, stderr = process.communicate(timeout=120)
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
    assert process.returncode == 128 + signal.SIGTERM, stderr[-2000:]
    assert "stopped by SIGTERM" in stderr and "--resume" in stderr
    client = MlflowClient(uri)
    experiment = client.get_experiment_by_name("resumed").experiment_id
    statuses = {run.data.tags["phase"]: run.info.status for run in client.search_runs([experiment])}
    assert statuses == {"study": "KILLED", "search": "KILLED"}
    assert search_steps(client, "resumed") == {"a": [0, 1, 2], "b": [0, 1, 2]}

    assert main([*args, "--resume"]) == 0
    runs = client.search_runs([experiment])
    assert sorted(run.data.tags["phase"] for run in runs) == ["retrain", "retrain", "search",
                                                              "search", "study"]
    assert {run.info.status for run in runs} == {"FINISHED"}
    assert search_steps(client, "resumed") == {"a": [0, 1, 2, 3], "b": [0, 1, 2, 3]}
