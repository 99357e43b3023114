"""`retrain.select: best_v_last_quarter`: the HiNAS code tests `model_best`, the best on V
(SSIM + PSNR/100) of the validations after 3/4 of the iterations (engine/trainer.py,
tools/dn_eval.py); the kept weights survive a resume."""

import copy
from pathlib import Path

import pytest
import torch

from searchspaces.genotype import Genotype
from studyspec.schema import Study
from trainables.data.bundles import RetrainData
from trainables.data.embedded import embedded_images
from trainables.loops import devices
from trainables.loops import retrain as retrain_loop
from trainables.loops.parts import centre_crop
from trainables.loops.retrain import in_last_quarter, run_retrain

GENOTYPE = Path(__file__).resolve().parents[2] / "studies/genotypes/hinas-official-3c4n.json"
# val/score of epochs 0-7: the best overall (epoch 0) lies before the last quarter (6, 7)
SCORES = [0.9, 0.1, 0.2, 0.3, 0.4, 0.8, 0.5, 0.3]


def test_the_last_quarter_follows_the_code_s_iterations():
    assert [e for e in range(400) if in_last_quarter(e, 400, 1000)] == list(range(300, 400))
    assert [e for e in range(8) if in_last_quarter(e, 8, 1)] == [6, 7]
    assert [e for e in range(3) if in_last_quarter(e, 3, 10)] == [2]  # 30 > 22
    assert in_last_quarter(0, 1, 4)  # one epoch: the last is the only one


@pytest.fixture(scope="module")
def images():
    return centre_crop(embedded_images("train", color=False)[:4], 32)


def scripted(monkeypatch, scores):
    """validate() gives the next score of `scores` (psnr = 100 x score, ssim 0)."""
    queue = list(scores)

    def validate(*args):
        score = queue.pop(0)
        return {"val/psnr": 100 * score, "val/ssim": 0.0, "val/score": score}

    monkeypatch.setattr(retrain_loop, "validate", validate)
    monkeypatch.setattr(retrain_loop, "cost_metrics", lambda *args, **kwargs: {})  # latency: slow


def retrain(images, select, state=None):
    study = Study.model_validate({
        "name": "s", "data": {"patch_size": 16},
        "search_space": {"name": "hinas", "options": {"num_layers": 3, "num_nodes": 4,
                                                      "width": 2, "stem_channels": 4}},
        "retrain": {"epochs": 8, "steps_per_epoch": 1, "batch_size": 2, "select": select}})
    data = RetrainData(train=images[:3], val=images[3:], test_sets={"tiny": images[3:]})
    reports = []
    model, metrics = run_retrain(
        study, Genotype.from_json(GENOTYPE.read_text()), study.data.noise, data,
        lambda epoch, metrics, state: reports.append((epoch, copy.deepcopy(state))),
        devices.configure(1, 0), state)
    return model, metrics, reports


def same_weights(model, state) -> bool:
    return all(torch.equal(value, state["model"][key])
               for key, value in model.state_dict().items())


def test_best_on_v_of_the_last_quarter_is_tested(images, monkeypatch):
    scripted(monkeypatch, SCORES)
    model, metrics, reports = retrain(images, "best_v_last_quarter")
    assert metrics["retrain/selected_epoch"] == 6 and metrics["val/score"] == 0.5
    assert same_weights(model, reports[6][1]) and "test/tiny/sigma25/psnr" in metrics
    scripted(monkeypatch, SCORES)
    _, _, last = retrain(images, "last")  # the same training: its last weights differ
    assert not same_weights(model, last[7][1])


def test_last_is_the_last_epoch(images, monkeypatch):
    scripted(monkeypatch, SCORES)
    model, metrics, reports = retrain(images, "last")
    assert "retrain/selected_epoch" not in metrics and metrics["val/score"] == 0.3
    assert same_weights(model, reports[7][1])


def test_a_resumed_retraining_keeps_the_best(images, monkeypatch):
    scripted(monkeypatch, SCORES)
    _, _, reports = retrain(images, "best_v_last_quarter")
    scripted(monkeypatch, SCORES[7:])
    model, metrics, _ = retrain(images, "best_v_last_quarter", state=reports[6][1])
    assert metrics["retrain/selected_epoch"] == 6
    assert same_weights(model, reports[6][1])
