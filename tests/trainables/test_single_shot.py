"""The single-shot procedure of Superkernel NAS (Mozejko et al., "Superkernel Neural
Architecture Search for Image Denoising", CVPRW 2020, Sec. 5.1): evaluation every k steps
with early stopping and the best supernet kept, then the distilled network tested with the
supernet's weights (`retrain.from: inherit`, no retraining); the keys' bad input."""

from __future__ import annotations

import copy
import itertools

import pytest
import torch

from orchestrator.study.arms import Arm
from orchestrator.study.plan import ArmPlan, check_start
from orchestrator.study.reading import StudyError, validate
from orchestrator.study.units import dedup_key
from trainables.data.bundles import RetrainData, SearchData
from trainables.loops import devices
from trainables.loops import search as search_loop
from trainables.loops.inheritance import inherited_weights
from trainables.loops.retrain import run_retrain
from trainables.loops.search import run_search

pytestmark = pytest.mark.usefixtures("small_costs")  # cost code is checked in test_cost.py

TINY = {
    "name": "tiny",
    "data": {"patch_size": 16, "noise": {"type": "awgn", "sigma": 25}},
    "search_space": {"name": "superkernel",
                     "options": {"depth": 1, "width": 4, "blocks_per_level": 1,
                                 "skipinit_scale": 0.5, "superkernel": "filterwise"}},
    "search": {"epochs": 5, "steps_per_epoch": 4, "eval_every": 1, "batch_size": 2,
               "warmup_epochs": 0, "patience": 1, "select_by": "psnr", "val_crop": 24},
    "retrain": {"steps_per_epoch": 2, "batch_size": 2, "self_ensemble": True},
}


def _data(images):
    return SearchData(train_w=images[:2], train_a=images[2:3], val=images[3:])


def _scripted_validation(monkeypatch, scores):
    """validate() of the search returns these PSNRs in turn (ties in score)."""
    scores = iter(scores)

    def fake(model, images, keys, runtime):
        psnr = next(scores)
        return {"val/psnr": psnr, "val/ssim": 0.5, "val/score": 0.5 + psnr / 100}

    monkeypatch.setattr(search_loop, "validate", fake)


def test_search_evaluates_every_k_steps_stops_early_and_keeps_the_best_supernet(
        images, monkeypatch):
    study = validate(TINY)
    _scripted_validation(monkeypatch, itertools.chain([20.0, 21.0, 22.0], itertools.repeat(1)))
    reports = []
    genotype = run_search(study, _data(images),
                          lambda *r: reports.append(copy.deepcopy(r)), devices.configure(1, 0))
    assert [epoch for epoch, _, _ in reports] == [0]  # stopped in the first of 5 epochs
    _, metrics, state = reports[0]
    assert metrics["search/stopped_early"] == 1.0 and metrics["search/stopped_at_step"] == 4
    best = state["best"]
    assert (best["score"], best["step"], best["stale"]) == (22.0, 3, 1)
    assert genotype.provenance["val_psnr"] == 22.0
    assert best["weights"].keys() == state["model"].keys()  # the supernet after step 3
    assert any(not torch.equal(best["weights"][k], v) for k, v in state["model"].items())


def test_a_search_that_runs_to_its_cap_says_so(images, monkeypatch):
    study = validate({**TINY, "search": {**TINY["search"], "epochs": 1, "eval_every": 2}})
    _scripted_validation(monkeypatch, [20.0, 21.0])
    reports = []
    run_search(study, _data(images), lambda *r: reports.append(r), devices.configure(1, 0))
    assert reports[-1][1]["search/stopped_early"] == 0.0
    assert reports[-1][1]["search/stopped_at_step"] == 4


def test_distilled_network_is_tested_with_the_inherited_weights(images):
    study = validate(TINY)
    assert (study.retrain_start(), study.retrain.epochs) == ("inherit", 0)  # the defaults
    runtime, states = devices.configure(1, 0), []
    genotype = run_search(study, _data(images), lambda e, m, s: states.append(s), runtime)
    start = inherited_weights(study, genotype, states[-1]["best"]["weights"])
    data = RetrainData(train=images[:3], val=images[3:], test_sets={"tiny": images[3:]},
                       start=start)
    reports = []
    model, metrics = run_retrain(study, genotype, study.data.noise, data,
                                 lambda *r: reports.append(r), runtime)
    assert [epoch for epoch, _, _ in reports] == [0] and "train/loss" not in metrics
    assert {"test/tiny/sigma25/psnr", "test/tiny/sigma25/psnr_x8", "cost/params"} <= set(metrics)
    assert all(torch.equal(value.cpu(), start[key]) for key, value in model.state_dict().items())


def _error(raw) -> str:
    with pytest.raises(StudyError) as caught:
        validate(raw)
    assert "\n" not in str(caught.value)
    return str(caught.value)


def test_bad_single_shot_keys_are_one_line_naming_the_key():
    hinas = {**TINY, "search_space": {"name": "hinas", "options": {}},
             "retrain": {"from": "inherit"}}
    assert "retrain.from" in _error(hinas) and "'hinas'" in _error(hinas)
    assert "search.patience" in _error({**TINY, "search": {**TINY["search"], "patience": 0}})
    odd = {**TINY, "search": {**TINY["search"], "eval_every": 3}}
    assert "search.eval_every" in _error(odd)
    assert "retrain.from" in _error({**TINY, "retrain": {"from": "pretrained"}})


def test_retrain_from_round_trips_and_scratch_keeps_todays_retraining():
    study = validate({**TINY, "retrain": {"from": "scratch"}})
    assert (study.retrain_start(), study.retrain.epochs) == ("scratch", 10)
    dumped = study.model_dump(mode="json")
    assert dumped["retrain"]["from"] == "scratch" and validate(dumped) == study


def test_a_given_genotype_cannot_inherit_and_scratch_needs_epochs():
    study = validate(TINY)
    with pytest.raises(StudyError, match="retrain.from: inherit needs the supernet"):
        check_start(Arm("given", genotype="g.json"), study, "s.yaml")
    scratch = validate({**TINY, "retrain": {"from": "scratch", "epochs": 0}})
    with pytest.raises(StudyError, match="retrain.epochs: 0 would test an untrained"):
        check_start(Arm("searched"), scratch, "s.yaml")


def test_inherited_retrainings_are_never_shared_between_search_runs():
    def keys(raw):
        arm = ArmPlan("a", 0, "", validate(raw), (0,), None, True, ())
        config = {"tuned": {}, "seed": 0, "noise": {}}
        return {dedup_key(arm, {**config, "candidate": {"source": run}}, "h") for run in "xy"}

    assert len(keys(TINY)) == 2
    assert len(keys({**TINY, "retrain": {"from": "scratch"}})) == 1
