"""A smoke JPEG artefact-removal study through the CLI (MoD-NAS Sec. 4.6): trained at
quality 10, tested on Classic5 from `--data-root` (`test/classic5/q10/psnr`), the supernet
monitored on it every search epoch (`search/test/classic5/q10/psnr`, Fig. 3's curves)."""

from __future__ import annotations

from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient

from orchestrator.cli import main

pytestmark = [pytest.mark.slow,  # starts a study through Ray Tune
              pytest.mark.usefixtures("shared_ray")]

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "datasets"
STUDY = """
name: jpeg
data: {train: embedded, test: [classic5], patch_size: 24, max_train_images: 6,
       noise: {type: jpeg, quality: 10}}
search_space: {name: hinas, options: {num_layers: 2, num_nodes: 2, width: 4, stem_channels: 8,
                                      variant: paper}}   # code: BN end part, 2 steps: ~8 dB
search: {epochs: 2, steps_per_epoch: 2, batch_size: 2, warmup_epochs: 1, val_crop: 32,
         monitor: [classic5], monitor_crop: 64}
retrain: {epochs: 1, steps_per_epoch: 2, batch_size: 2, cost: {input_size: 64, repeats: 1}}
"""


@pytest.mark.skipif(not (SHARED / "classic5").is_dir(), reason="../shared/datasets absent")
def test_a_jpeg_study_tests_on_classic5_and_monitors_the_supernet(tmp_path):
    study = tmp_path / "jpeg.yaml"
    study.write_text(STUDY)
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    assert main(["study", str(study), "--data-root", str(SHARED), "--tracking-uri", uri,
                 "--storage", str(tmp_path / "runs"), "--verbose", "0"]) == 0
    client = MlflowClient(uri)
    runs = client.search_runs([client.get_experiment_by_name("jpeg").experiment_id])
    (search,) = [run for run in runs if run.data.tags["phase"] == "search"]
    (retrain,) = [run for run in runs if run.data.tags["phase"] == "retrain"]
    assert 15 < retrain.data.metrics["test/classic5/q10/psnr"] < 50
    assert not any("sigma" in key for key in retrain.data.metrics)
    curve = client.get_metric_history(search.info.run_id, "search/test/classic5/q10/psnr")
    assert sorted(point.step for point in curve) == [0, 1]
    assert all(10 < point.value < 50 for point in curve)
