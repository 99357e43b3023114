"""`baselines:` in a study file: expanded into arms (a genotype, no search, the study's own
data and noise), published weights evaluated without training, bad entries in one line."""

import dataclasses
from pathlib import Path

import pytest
import torch

from orchestrator.run.preparing import plan_arms
from orchestrator.study.arms import expand_arms
from orchestrator.study.reading import StudyError, load_study, validate
from orchestrator.study.units import retrain_configs, search_config
from searchspaces.baselines import DnCNN
from searchspaces.genotype import Genotype
from trainables.data.bundles import RetrainData
from trainables.data.embedded import embedded_images
from trainables.loops import devices
from trainables.loops.evaluation import evaluate_sets
from trainables.loops.retrain import run_retrain

pytestmark = pytest.mark.usefixtures("small_costs")  # cost code is checked in test_cost.py

STUDY = """
name: tiny
seeds: [0, 1]
search_space: {name: hinas, options: {num_layers: 2}}
retrain: {scale_options: {width: 2}, noise: [{type: awgn, sigma: 25}]}
tune: {num_samples: 2, space: {search_space.options.width: {type: int, low: 4, high: 8}}}
groups: {a: {title: A}, b: {title: B}}
arms: {named: [{name: x, group: a}, {name: y, group: b}]}
"""


@pytest.fixture()
def weights(tmp_path):
    """A state dict shaped like the published DnCNN-S weights (no BatchNorm)."""
    path = tmp_path / "dncnn.pth"
    torch.manual_seed(0)
    torch.save(DnCNN(batch_norm=False).state_dict(), path)
    return path


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "study.yaml"
    path.write_text(text)
    return path


def error_of(tmp_path: Path, text: str) -> str:
    with pytest.raises(StudyError) as caught:
        path = write(tmp_path, text)
        plan_arms(load_study(path), str(path))
    assert "\n" not in str(caught.value)
    return str(caught.value)


def test_a_baseline_is_an_untuned_arm_with_a_dncnn_genotype_after_the_others(tmp_path):
    path = write(tmp_path, STUDY + "baselines: [dncnn]\n")
    plans = {plan.name: plan for plan in plan_arms(load_study(path), str(path))}
    assert list(plans) == ["x", "y", "baseline-dncnn"]
    plan = plans["baseline-dncnn"]
    assert (plan.index, plan.group, plan.seeds, plan.baseline, plan.tuned) == (
        2, "", (0, 1), True, False)  # its rows join tables a and b (orchestrator.results.aggregate)
    assert plan.method == "dncnn" and plan.study.retrain.scale_options == {}
    assert Genotype.from_json(plan.genotype).arch == {"depth": 17, "channels": 64,
                                                      "batch_norm": True}
    assert plan.study.data == plans["x"].study.data and plan.noises == plans["x"].noises
    labels = search_config(plan, 0, 0, {})["labels"]
    assert labels["baseline"] == "true" and "baseline" not in search_config(
        plans["x"], 0, 0, {"search_space.options.width": 5})["labels"]


def test_published_weights_are_evaluated_once_at_the_first_seed(tmp_path, weights):
    path = write(tmp_path, STUDY + f"baselines: [dncnn, {{name: dncnn, weights: {weights}}}]\n")
    study = load_study(path)
    assert [arm.name for arm in expand_arms(study)][-2:] == ["baseline-dncnn",
                                                             "baseline-dncnn-published"]
    plans = {plan.name: plan for plan in plan_arms(study, str(path))}
    published, trained = plans["baseline-dncnn-published"], plans["baseline-dncnn"]
    assert (published.seeds, published.weights) == ((0,), str(weights.resolve()))
    assert Genotype.from_json(published.genotype).arch["batch_norm"] is False
    search = search_config(published, 0, 0, {})
    key = retrain_configs(published, search, published.genotype, "")[0]["dedup_key"]
    same_net = dataclasses.replace(published, weights=None)
    assert key != retrain_configs(same_net, search, published.genotype, "")[0]["dedup_key"]
    assert trained.weights is None


def test_a_baseline_trains_with_its_own_settings_where_the_study_trains_none(tmp_path):
    """A single-shot study (`retrain.epochs: 0`: the searched arms are tested as distilled)
    refuses a plain DnCNN baseline, which would be tested untrained; with `set` the baseline
    trains by its own schedule while the other arms keep the study's."""
    single_shot = ("name: single-shot\nsearch_space: {name: superkernel}\n"
                   "retrain: {epochs: 0, noise: [{type: awgn, sigma: 25}]}\n")
    assert "retrain.epochs: 0 would test an untrained network" in error_of(
        tmp_path, single_shot + "baselines: [dncnn]\n")
    path = write(tmp_path, single_shot + "baselines: [{name: dncnn, set: {retrain.epochs: 3, "
                 "retrain.optimizer: {name: adam, lr: 0.002}}}]\n")
    plans = {plan.name: plan for plan in plan_arms(load_study(path), str(path))}
    dncnn = plans["baseline-dncnn"].study.retrain
    assert (dncnn.epochs, dncnn.optimizer.name, dncnn.optimizer.lr) == (3, "adam", 0.002)
    searched = plans["default"].study.retrain
    assert searched.epochs == 0 and searched.optimizer.lr != 0.002


@pytest.mark.parametrize("entry, message", [
    ("[resnet]", "baselines.0.name: Input should be 'dncnn'"),
    ("[{name: dncnn, weight: w.pth}]", "baselines.0.weight: unknown key"),
    ("[3]", "baselines.0: Input should be a valid dictionary"),
    ("[dncnn, {name: dncnn}]", "baselines.1: baseline arm 'baseline-dncnn' is listed twice"),
    ("{name: dncnn}", "baselines: Input should be a valid list"),
])
def test_bad_entries_are_one_line_errors(tmp_path, entry, message):
    assert message in error_of(tmp_path, STUDY + f"baselines: {entry}\n")


def test_published_weights_only_for_grey_awgn_sigma25(tmp_path, weights):
    entry = f"baselines: [{{name: dncnn, weights: {weights}}}]\n"
    sigma50 = STUDY.replace("sigma: 25}]", "sigma: 25}, {type: awgn, sigma: 50}]")
    assert error_of(tmp_path, sigma50 + entry).endswith(
        "baselines.0.weights: published weights are evaluated at grey AWGN sigma 25 only, "
        "but the study retrains at sigma50")
    assert "data.color is true" in error_of(tmp_path, STUDY + "data: {color: true}\n" + entry)
    assert "test_keys" in error_of(tmp_path, STUDY.replace("noise: [", "test_keys: [sigma15], "
                                                           "noise: [") + entry)


def test_a_missing_or_wrong_weights_file_is_one_line(tmp_path, weights):
    missing = error_of(tmp_path, STUDY + "baselines: [{name: dncnn, weights: absent.pth}]\n")
    assert "baselines: baseline-dncnn-published: weights: file not found: absent.pth" in missing
    torch.save({"model.0.weight": torch.zeros(3)}, tmp_path / "wrong.pth")
    wrong = error_of(tmp_path, STUDY + "baselines: [{name: dncnn, weights: wrong.pth}]\n")
    assert "wrong.pth does not load into dncnn" in wrong


def test_published_weights_are_tested_like_a_retraining_without_training(weights):
    study = validate({"name": "tiny", "search_space": {"name": "dncnn"},
                      "data": {"noise": {"type": "awgn", "sigma": 25}}})
    images = [dataclasses.replace(image, pixels=image.pixels[:24, :24])
              for image in embedded_images("train", color=False)[:2]]
    state = torch.load(weights, weights_only=True)
    data = RetrainData(train=images, val=images[:1], test_sets={"tiny": images[1:]},
                       weights=weights.read_bytes())
    genotype = Genotype.from_json(
        '{"format": "nas-denoise-genotype", "version": 1, "space": "dncnn", "primitives": [],'
        ' "arch": {"depth": 17, "channels": 64, "batch_norm": false}, "provenance": {}}')
    reports = []
    runtime = devices.configure(1, 0)
    model, metrics = run_retrain(study, genotype, study.data.noise, data,
                                 lambda epoch, m, s: reports.append((epoch, m)), runtime)
    assert reports == [(0, metrics)]  # one report, no training loss
    assert "train/loss" not in metrics and {"val/psnr", "cost/params"} <= set(metrics)
    reference = DnCNN(batch_norm=False)
    reference.load_state_dict(state)
    expected = evaluate_sets(reference, data.test_sets, ["sigma25"], "cpu")
    assert metrics["test/tiny/sigma25/psnr"] == pytest.approx(expected["tiny/sigma25/psnr"])
    assert all(torch.equal(model.state_dict()[k].cpu(), v) for k, v in state.items())
