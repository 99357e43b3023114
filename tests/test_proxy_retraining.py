"""Two-stage retraining (`retrain.proxy`) on a study tuning the retraining's learning rate
over three Optuna samples (so that no two candidates are the same work): every
candidate is retrained for the proxy's 1 step, the 2 best by their validation score in
full (2 epochs of 4 steps); the tables count the full retrainings only; the parent run has
the Kendall tau of the kept candidates' short and full scores and the compute saved,
1 - (3 x 1 + 2 x 8) / (3 x 8) = 5/24 of the retraining steps."""

import pytest
from mlflow.tracking import MlflowClient

from orchestrator.cli import main

STUDY = """
name: proxied
data: {train: embedded, test: [embedded], patch_size: 24, max_train_images: 8,
       noise: {type: awgn, sigma: 25}}
search_space: {name: hinas, options: {num_layers: 2, num_nodes: 2, width: 4, stem_channels: 8}}
search: {epochs: 2, steps_per_epoch: 2, batch_size: 2, warmup_epochs: 1, val_crop: 32}
retrain: {epochs: 2, steps_per_epoch: 4, batch_size: 2, space_options: {width: 4},
          optimizer: {name: adam, lr: 0.001}, cost: {input_size: 64, repeats: 1},
          proxy: {steps: 1, keep: 2}}
tune:
  num_samples: 3
  sampler_seed: 0
  max_concurrent: 2
  space:
    retrain.optimizer.lr: {type: float, low: 0.0001, high: 0.01, log: true}
"""


@pytest.mark.slow  # a tuned study through Ray Tune
@pytest.mark.usefixtures("shared_ray")
def test_every_candidate_short_the_best_in_full(tmp_path):
    study = tmp_path / "proxied.yaml"
    study.write_text(STUDY)
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    assert main(["study", str(study), "--tracking-uri", uri, "--storage",
                 str(tmp_path / "runs"), "--verbose", "0", "--no-cache"]) == 0
    client = MlflowClient(uri)
    runs = client.search_runs([client.get_experiment_by_name("proxied").experiment_id])
    retrains = [r for r in runs if r.data.tags.get("phase") == "retrain"]
    short = [r for r in retrains if r.data.tags["proxy"] == "short"]
    full = [r for r in retrains if r.data.tags["proxy"] == "full"]
    assert (len(short), len(full)) == (3, 2)
    assert {r.data.tags["unit"] for r in full} < {r.data.tags["unit"] for r in short}
    assert all(sorted(m.step for m in client.get_metric_history(r.info.run_id, "train/loss"))
               == [0] for r in short)  # one epoch (of the proxy's one step)
    by_unit = {r.data.tags["unit"]: r.data.metrics["val/psnr"] for r in short}
    dropped = ({r.data.tags["unit"] for r in short} - {r.data.tags["unit"] for r in full}).pop()
    assert by_unit[dropped] == min(by_unit.values())  # the worst short score is not kept
    (parent,) = [r for r in runs if r.data.tags.get("phase") == "study"]
    assert parent.data.metrics["proxy/compute_saved"] == pytest.approx(5 / 24)
    assert -1.0 <= parent.data.metrics["proxy/kendall_tau"] <= 1.0
    table = client.download_artifacts(parent.info.run_id, "results/results.md", str(tmp_path))
    assert sum(line.count("(1) |") for line in open(table)) >= 2  # two rows, n = 1 each
