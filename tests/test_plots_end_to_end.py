"""The trial pictures through the real trainables: one tiny study with an arm per search space
runs under Ray Tune, and every search run holds its curves, architecture weights and
architecture diagram, every retrain run its diagram and samples, as PNGs under plots/."""

from pathlib import Path

import numpy as np
import pytest
from mlflow.tracking import MlflowClient
from PIL import Image

from orchestrator.cli import main

pytestmark = [pytest.mark.slow,  # starts a study through Ray Tune
              pytest.mark.usefixtures("shared_ray")]

STUDY = """
name: plots
data: {train: embedded, test: [embedded], patch_size: 16, max_train_images: 6,
       noise: {type: awgn, sigma: 25}}
search_space: {name: hinas, options: {num_layers: 2, num_nodes: 2, width: 4, stem_channels: 8}}
search: {epochs: 2, steps_per_epoch: 1, batch_size: 2, warmup_epochs: 0,
         validate_from_epoch: 0, val_crop: 16}
retrain: {epochs: 1, steps_per_epoch: 1, batch_size: 2, scale_options: {},
          cost: {input_size: 64, repeats: 1}}
arms:
  named:
    - {name: hinas}
    - {name: modnas, set: {search_space: {name: modnas, options: {stages: 2, levels: 2,
                                                                   width: 8,
                                                                   channel_multiple: 4}}}}
    - {name: superkernel, set: {search_space: {name: superkernel, options: {
        depth: 1, width: 4, blocks_per_level: 1, skipinit_scale: 0.5}}}}
"""
SEARCH = {"plots/curves.png", "plots/arch_weights.png", "plots/architecture.png"}
RETRAIN = {"plots/architecture.png", "plots/samples.png"}


@pytest.fixture(scope="module")
def runs(tmp_path_factory, shared_ray):
    folder = tmp_path_factory.mktemp("plots")
    study = folder / "plots.yaml"
    study.write_text(STUDY)
    uri = f"sqlite:///{folder / 'mlflow.db'}"
    assert main(["study", str(study), "--tracking-uri", uri, "--storage",
                 str(folder / "runs"), "--verbose", "0"]) == 0
    client = MlflowClient(uri)
    experiment = client.get_experiment_by_name("plots")
    return client, client.search_runs([experiment.experiment_id])


def plots_of(client: MlflowClient, run_id: str) -> dict[str, Path]:
    return {item.path: Path(client.download_artifacts(run_id, item.path))
            for item in client.list_artifacts(run_id, "plots")}


def test_every_trial_run_holds_its_plots(runs):
    client, found = runs
    seen = set()
    for run in found:
        phase, arm = run.data.tags["phase"], run.data.tags.get("arm")
        if phase == "study":
            # the parent's own picture (nothing is tuned: no Optuna plots)
            assert set(plots_of(client, run.info.run_id)) == {"plots/pareto.png"}
            continue
        plots = plots_of(client, run.info.run_id)
        assert set(plots) == (SEARCH if phase == "search" else RETRAIN), (arm, phase)
        assert not any(key.startswith("plot_warning.") for key in run.data.tags)
        for path in plots.values():
            pixels = np.asarray(Image.open(path).convert("RGB"))
            assert min(pixels.shape[:2]) > 100 and pixels.std() > 1.0, path
        seen.add((arm, phase))
    arms = {"hinas", "modnas", "superkernel"}
    assert seen == {(arm, phase) for arm in arms for phase in ("search", "retrain")}


def test_the_superkernel_arm_inherits_its_searched_weights_through_mlflow(runs):
    """retrain.from defaults per space and is wired through the trials: the superkernel search
    logs its best supernet, its retrain run starts from it; the HiNAS arm retrains from
    scratch and its search logs no supernet weights."""
    client, found = runs
    starts, logged = {}, {}
    for run in found:
        phase, arm = run.data.tags["phase"], run.data.tags.get("arm")
        if phase == "retrain":
            starts[arm] = run.data.params.get("retrain.from")
        elif phase == "search":
            names = {item.path for item in client.list_artifacts(run.info.run_id, "weights")}
            logged[arm] = "weights/supernet_best.pt" in names
    assert (starts["superkernel"], starts["hinas"]) == ("inherit", "scratch")
    assert (logged["superkernel"], logged["hinas"]) == (True, False)
