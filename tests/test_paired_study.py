"""A smoke study on a paired (real-noise) folder through the CLI: it trains on the pairs and
logs `test/<set>/real/psnr`, the test set named under `data.root`."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from mlflow.tracking import MlflowClient
from PIL import Image

from orchestrator.cli import main
from trainables.data.embedded import embedded_images

pytestmark = [pytest.mark.slow,  # starts a study through Ray Tune
              pytest.mark.usefixtures("shared_ray")]

STUDY = """
name: paired
data: {{train: {train}, test: [pairs], root: {root}, patch_size: 24}}
search_space: {{name: hinas, options: {{num_layers: 2, num_nodes: 2, width: 4,
                                       stem_channels: 8}}}}
search: {{epochs: 1, steps_per_epoch: 2, batch_size: 2, warmup_epochs: 0, val_crop: 32}}
retrain: {{epochs: 1, steps_per_epoch: 2, batch_size: 2, cost: {{input_size: 64, repeats: 1}}}}
"""


def write_paired_folder(folder: Path, count: int = 5, size: int = 48) -> None:
    """Centre crops of grey embedded photographs as clean/, plus AWGN sigma 25 saved as
    8-bit noisy/: a stand-in for a real-noise set such as SIDD."""
    rng = np.random.default_rng(0)
    for part in ("noisy", "clean"):
        (folder / part).mkdir(parents=True)
    for image in embedded_images("train", color=False)[:count]:
        top, left = ((n - size) // 2 for n in image.pixels.shape[:2])
        clean = np.round(image.pixels[top : top + size, left : left + size, 0] * 255)
        noisy = np.clip(np.round(clean + rng.normal(0, 25, clean.shape)), 0, 255)
        Image.fromarray(clean.astype(np.uint8)).save(folder / "clean" / f"{image.name}.png")
        Image.fromarray(noisy.astype(np.uint8)).save(folder / "noisy" / f"{image.name}.png")


def test_a_study_on_a_paired_folder_reports_real_psnr(tmp_path):
    write_paired_folder(tmp_path / "pairs")
    study = tmp_path / "paired.yaml"
    study.write_text(STUDY.format(train=tmp_path / "pairs", root=tmp_path))
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    assert main(["study", str(study), "--tracking-uri", uri, "--storage",
                 str(tmp_path / "runs"), "--verbose", "0"]) == 0
    client = MlflowClient(uri)
    runs = client.search_runs([client.get_experiment_by_name("paired").experiment_id])
    (retrain,) = [run for run in runs if run.data.tags["phase"] == "retrain"]
    metrics = retrain.data.metrics
    assert 10 < metrics["test/pairs/real/psnr"] < 60 and "val/psnr" in metrics
    assert not any("sigma" in key for key in metrics)
    artifacts = [item.path for item in client.list_artifacts(retrain.info.run_id, "samples/pairs")]
    assert all(path.endswith("_real.png") for path in artifacts) and artifacts
    (parent,) = [run for run in runs if run.data.tags["phase"] == "study"]
    table = Path(client.download_artifacts(parent.info.run_id, "results/results.md")).read_text()
    assert "pairs real PSNR" in table
