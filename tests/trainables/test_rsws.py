"""search.strategy: rsws through the Ray-free search loop (trainables/loops/rsws.py): sampled weight
steps, the N candidates scored on V, the best one as the genotype, bad input."""

from __future__ import annotations

import copy

import pytest
import torch

from orchestrator.study.reading import StudyError, validate
from searchspaces.hinas.sampling import PathSampling
from searchspaces.registry import get_space
from trainables.data.bundles import SearchData
from trainables.loops import rsws
from trainables.loops.search import Best, build_search, run_search

RSWS = {
    "name": "tiny-rsws",
    "data": {"patch_size": 16, "noise": {"type": "awgn", "sigma": 25}},
    "search_space": {"name": "hinas",
                     "options": {"num_layers": 2, "num_nodes": 2, "width": 3, "stem_channels": 4}},
    "search": {"strategy": "rsws", "rsws": {"samples": 5}, "epochs": 2, "steps_per_epoch": 2,
               "batch_size": 2, "warmup_epochs": 20, "val_crop": 24},
}


def test_rsws_search_returns_the_best_scoring_candidate(images, runtime, monkeypatch):
    study = validate(RSWS)  # warm-up epochs beyond the search: nothing to warm up in rsws
    data = SearchData(train_w=images[:2], train_a=images[2:3], val=images[3:])
    reports, fixed = [], []
    original = PathSampling.fix_architecture

    def spy(supernet, genotype):  # every fix: each step's draw, and the probe around checks
        fixed.append(genotype.canonical())
        original(supernet, genotype)

    monkeypatch.setattr(PathSampling, "fix_architecture", spy)
    genotype = run_search(study, data, lambda e, m, s: reports.append(
        (e, m, copy.deepcopy(s))), runtime)
    last = reports[-1][1]
    scores = [last[f"rsws/candidate_{i:03d}/score"] for i in range(5)]
    winner = max(range(5), key=scores.__getitem__)
    assert len(set(scores)) > 1 and last["rsws/best_candidate"] == winner
    assert genotype.provenance["rsws_candidate"] == winner
    pool = rsws.candidates(build_search(study, runtime).supernet, study.seed, 5)
    assert genotype.canonical() == pool[winner].canonical()
    steps = fixed[:-5][0::2]  # each step fixes its draw, then the probe pool[0]
    assert fixed[:-5][1::2] == [pool[0].canonical()] * 4 and fixed[-5:] == [
        g.canonical() for g in pool]
    assert len(steps) == 4 and steps[:2] != steps[2:]  # 2 epochs x 2 steps, fresh draws
    assert reports[-1][2]["best"]["score"] == pytest.approx(scores[winner])
    assert "rsws/best_candidate" not in reports[0][1]  # scored once, at the end
    initial = build_search(study, runtime).supernet.state_dict()["alphas"]
    assert all(torch.equal(s["model"]["alphas"], initial) for _, _, s in reports)


def test_choose_keeps_the_candidate_with_the_highest_score(monkeypatch, runtime):
    space = get_space("hinas")
    supernet = space.build_supernet(space.tiny_options(), 1)
    pool, scores, seen = rsws.candidates(supernet, 0, 4), [0.3, 0.9, 0.5, 0.1], []

    def fake_validate(model, images, keys, runtime):  # V as seen by each fixed candidate
        seen.append(model.derive().canonical())
        score = scores[len(seen) - 1]
        return {"val/score": score, "val/psnr": 100 * score, "val/ssim": 0.0}

    monkeypatch.setattr(rsws, "validate", fake_validate)
    best = Best()
    metrics = rsws.choose(supernet, pool, best, 1, [], [], runtime, "score")
    assert seen == [genotype.canonical() for genotype in pool]
    assert metrics["rsws/best_candidate"] == 1 and best.score == 0.9
    assert best.genotype["arch"] == pool[1].to_dict()["arch"]


@pytest.mark.parametrize("samples", [0, -3])
def test_fewer_than_one_sample_is_one_line_naming_the_key(samples):
    raw = copy.deepcopy(RSWS)
    raw["search"]["rsws"]["samples"] = samples
    with pytest.raises(StudyError) as raised:
        validate(raw)
    message = str(raised.value)
    assert "search.rsws.samples" in message and "\n" not in message


def test_a_resumed_rsws_search_draws_the_same_architectures(images, runtime):
    study = validate(RSWS)
    data = SearchData(train_w=images[:2], train_a=images[2:3], val=images[3:])
    reports, resumed = [], []
    whole = run_search(study, data, lambda e, m, s: reports.append(
        (e, m, copy.deepcopy(s))), runtime)
    again = run_search(study, data, lambda e, m, s: resumed.append((e, m)), runtime,
                       state=reports[0][2])
    assert [e for e, _ in resumed] == [1]
    assert resumed[0][1]["train/loss"] == pytest.approx(reports[1][1]["train/loss"], rel=1e-4)
    assert again.canonical() == whole.canonical()
