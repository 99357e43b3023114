"""Kill -9 of the driver with two arms' searches in flight, then `--resume` through the CLI:
finished work is not rerun, interrupted trials continue from their checkpoints in their own
MLflow runs, nothing is lost, duplicated or left RUNNING, and the tables come out."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient

from orchestrator.cli import main

STUDY = """
name: resumed
data: {train: embedded, test: [embedded], patch_size: 24, max_train_images: 8,
       noise: {type: awgn, sigma: 25}}
search_space: {name: hinas, options: {num_layers: 2, num_nodes: 2, width: 4, stem_channels: 8}}
search: {epochs: 4, steps_per_epoch: 8, batch_size: 2, warmup_epochs: 1, val_crop: 32}
retrain: {epochs: 2, steps_per_epoch: 2, batch_size: 2, space_options: {width: 4}}
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


def kill_when_both_arms_search(command: list[str], client: MlflowClient) -> None:
    """Start the study, SIGKILL its whole process group once both arms are mid-search."""
    process = subprocess.Popen(command, start_new_session=True, stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 240
        while time.monotonic() < deadline and process.poll() is None:
            steps = search_steps(client, "resumed")
            if len(steps) == 2 and all(0 < len(s) < EPOCHS for s in steps.values()):
                break
            time.sleep(0.3)
        else:
            pytest.fail("the study ended or stalled before both searches were in flight")
    finally:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()


def test_kill_minus_nine_then_resume(tmp_path):
    study = tmp_path / "resumed.yaml"
    study.write_text(STUDY)
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    args = ["study", str(study), "--tracking-uri", uri, "--storage", str(tmp_path / "runs"),
            "--verbose", "0"]
    client = MlflowClient(uri)
    kill_when_both_arms_search([sys.executable, "-m", "orchestrator", *args], client)
    assert main([*args, "--resume"]) == 0

    runs = client.search_runs([client.get_experiment_by_name("resumed").experiment_id])
    phases = sorted(run.data.tags["phase"] for run in runs)
    assert phases == ["retrain", "retrain", "search", "search", "study"]
    assert {run.info.status for run in runs} == {"FINISHED"}
    assert search_steps(client, "resumed") == {"a": [0, 1, 2, 3], "b": [0, 1, 2, 3]}
    (parent,) = [run for run in runs if run.data.tags["phase"] == "study"]
    table = Path(client.download_artifacts(parent.info.run_id, "results/g.md")).read_text()
    assert "| a |" in table and "| b |" in table and table.count("(1) |") >= 4
