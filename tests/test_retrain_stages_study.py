"""`retrain.stages` and MoD-NAS `full_width` through the CLI, Ray Tune and MLflow: one search,
its genotype retrained at T = 1 and 2 with every searched layer at the full width. The
retrain runs carry the search's arch_hash and their `stages`, and each built network is the
one the searched genotype describes at its T and full width (parameters counted from the
plan), so a trial that ignored either key would log other counts."""

from __future__ import annotations

import json

import pytest
from mlflow.tracking import MlflowClient

from orchestrator.cli import main
from searchspaces.genotype import Genotype
from searchspaces.modnas.plan import full_width_arch, parameter_count
from searchspaces.registry import get_space

pytestmark = [pytest.mark.slow,  # starts a study through Ray Tune
              pytest.mark.usefixtures("shared_ray")]

STUDY = """
name: stages
data: {train: embedded, test: [embedded], patch_size: 16, max_train_images: 6}
search_space: {name: modnas, options: {stages: 2, levels: 2, width: 8, channel_multiple: 4,
                                       rho: 0.5}}
search: {epochs: 2, steps_per_epoch: 2, batch_size: 2, warmup_epochs: 1, val_crop: 32,
         validate_from_epoch: 1}
retrain: {epochs: 1, steps_per_epoch: 1, batch_size: 2, stages: [1, 2],
          space_options: {full_width: true}, cost: {input_size: 64, repeats: 1}}
resources: {search: {cpu: 1, gpu: 0}, retrain: {cpu: 1, gpu: 0}}
"""


def test_one_search_retrained_at_each_t_and_full_width(tmp_path):
    study = tmp_path / "stages.yaml"
    study.write_text(STUDY)
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    assert main(["study", str(study), "--tracking-uri", uri, "--storage",
                 str(tmp_path / "runs"), "--verbose", "0"]) == 0
    client = MlflowClient(uri)
    runs = client.search_runs([client.get_experiment_by_name("stages").experiment_id])
    (search,) = [run for run in runs if run.data.tags.get("phase") == "search"]
    retrains = {int(run.data.tags["stages"]): run for run in runs
                if run.data.tags.get("phase") == "retrain"}
    assert sorted(retrains) == [1, 2]
    path = client.download_artifacts(search.info.run_id, "genotype.json", str(tmp_path))
    searched = Genotype.from_dict(json.loads(open(path).read()))
    for stages, run in retrains.items():
        assert run.data.tags["arch_hash"] == searched.arch_hash()
        assert run.data.params["retrain.stages_used"] == str(stages)
        arch = get_space("modnas").at_stages(searched, stages).arch
        assert run.data.metrics["cost/params"] == parameter_count(full_width_arch(arch), 1)
    assert parameter_count(full_width_arch(searched.arch), 1) != \
        parameter_count(searched.arch, 1)  # rho 0.5 kept fewer channels than the width
