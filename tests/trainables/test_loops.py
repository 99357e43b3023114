"""The Ray-free search and retrain loops on tiny data: warm-up, best epoch, resume, testing."""

import copy
import math

import pytest
import torch

from orchestrator.study.reading import validate
from searchspaces.genotype import Genotype
from trainables.data.bundles import RetrainData, SearchData
from trainables.loops import devices
from trainables.loops.retrain import run_retrain
from trainables.loops.search import build_search, entropy_metric, run_search

pytestmark = pytest.mark.usefixtures("small_costs")  # cost code is checked in test_cost.py

TINY = {
    "name": "tiny",
    "data": {"patch_size": 16, "noise": {"type": "awgn", "sigma": 25}},
    "search_space": {"name": "hinas",
                     "options": {"num_layers": 2, "num_nodes": 2, "width": 3, "stem_channels": 4}},
    "search": {"epochs": 3, "steps_per_epoch": 2, "batch_size": 2, "warmup_epochs": 1,
               "validate_from_epoch": 1, "val_crop": 24,
               "arch_optimizer": {"name": "adam", "lr": 0.05}},
    "retrain": {"epochs": 2, "steps_per_epoch": 2, "batch_size": 2,
                "space_options": {"width": 4}},
}


def keep(reports):
    """A reporter that snapshots the state (the loop hands out live tensors)."""
    return lambda epoch, metrics, state: reports.append((epoch, metrics, copy.deepcopy(state)))


def search_data(images):
    return SearchData(train_w=images[:2], train_a=images[2:3], val=images[3:])


def test_search_updates_arch_only_after_warmup_and_keeps_best(images, runtime):
    study = validate(TINY)
    reports = []
    genotype = run_search(study, search_data(images),
                          keep(reports), runtime)
    alphas = [state["model"]["alphas"] for _, _, state in reports]
    initial = build_search(study, runtime).supernet.state_dict()["alphas"]
    assert torch.equal(alphas[0], initial)  # warm-up epoch: weights only
    assert not torch.equal(alphas[1], alphas[0])  # architecture steps after it
    assert [e for e, _, _ in reports] == [0, 1, 2]
    best = reports[-1][2]["best"]
    assert best["epoch"] >= 1  # selection starts at validate_from_epoch
    scores = [m["val/score"] for e, m, _ in reports if e >= 1]
    assert best["score"] == max(scores)
    assert genotype.provenance["epoch"] == best["epoch"]
    assert all(m["search/alpha_entropy"] > 0 for _, m, _ in reports)


def test_search_resumes_from_reported_state(images, runtime):
    study = validate(TINY)
    reports = []
    run_search(study, search_data(images), keep(reports), runtime)
    resumed = []
    run_search(study, search_data(images), keep(resumed), runtime,
               state=reports[1][2])
    assert [e for e, _, _ in resumed] == [2]
    assert resumed[0][1]["train/loss"] == pytest.approx(reports[2][1]["train/loss"], rel=1e-4)


def test_retrain_tests_and_costs_at_the_end(images, runtime):
    study = validate(TINY)
    genotype = run_search(study, search_data(images), lambda *a: None, runtime)
    genotype = Genotype.from_json(genotype.to_json())
    data = RetrainData(train=images[:3], val=images[3:], test_sets={"tiny": images[3:]})
    reports = []
    model, metrics = run_retrain(study, genotype, study.data.noise, data,
                                 lambda e, m, s: reports.append(m), runtime)
    assert "test/tiny/sigma25/psnr" not in reports[0]
    assert {"test/tiny/sigma25/psnr", "test/tiny/sigma25/ssim", "cost/params"} <= set(metrics)
    assert metrics["cost/params"] == sum(p.numel() for p in model.parameters())


def test_retrain_options_scale_the_searched_width_then_override():
    from trainables.loops.retrain import derived_options

    base = {**TINY, "retrain": {"scale_options": {"width": 2}}}
    assert derived_options(validate(base))["width"] == 6  # searched 3, retrained at twice
    both = {**TINY, "retrain": {"scale_options": {"width": 2}, "space_options": {"width": 5}}}
    assert derived_options(validate(both))["width"] == 5
    with pytest.raises(ValueError, match="retrain.scale_options.widht"):
        validate({**TINY, "retrain": {"scale_options": {"widht": 2}}})


def test_entropy_is_left_out_for_a_supernet_with_nothing_to_search():
    from searchspaces.registry import get_space

    space = get_space("superkernel")
    fixed = space.build_supernet({**space.tiny_options(), "superkernel": "none"}, 1)
    searched = space.build_supernet(space.tiny_options(), 1)
    assert entropy_metric(fixed) == {}
    assert entropy_metric(searched)["search/alpha_entropy"] > 0


def test_retrain_resumes_after_the_saved_epoch_with_the_same_weights(images, runtime):
    """Resumed from epoch 0's checkpoint, retraining runs epochs 1 and 2 only and ends with
    the weights and scores of an uninterrupted run."""
    study = validate({**TINY, "retrain": {**TINY["retrain"], "epochs": 3}})
    genotype = Genotype.from_json(run_search(study, search_data(images), lambda *a: None,
                                             runtime).to_json())
    data = RetrainData(train=images[:3], val=images[3:], test_sets={"tiny": images[3:]})
    whole, resumed = [], []
    model, metrics = run_retrain(study, genotype, study.data.noise, data, keep(whole), runtime)
    again, again_metrics = run_retrain(study, genotype, study.data.noise, data, keep(resumed),
                                       runtime, state=whole[0][2])
    assert [e for e, _, _ in resumed] == [1, 2]
    for (_, first, _), (_, second, _) in zip(whole[1:], resumed):
        assert second["train/loss"] == pytest.approx(first["train/loss"], rel=1e-5)
    assert again_metrics["test/tiny/sigma25/psnr"] == pytest.approx(
        metrics["test/tiny/sigma25/psnr"], abs=1e-4)
    for key, value in model.state_dict().items():
        torch.testing.assert_close(again.state_dict()[key], value, rtol=1e-5, atol=1e-6)


def test_a_diverging_search_stops_at_the_first_non_finite_step(images, runtime, monkeypatch):
    import trainables.loops.search as search_loop

    steps = []
    real_step = search_loop.loss_step
    monkeypatch.setattr(search_loop, "loss_step",
                        lambda *args: steps.append(1) or real_step(*args))
    # HiNAS `variant: paper`: the code variant's sigmoid output and BatchNorm'd head keep
    # the loss finite even at lr 1000
    space = {"name": "hinas", "options": {**TINY["search_space"]["options"], "variant": "paper"}}
    study = validate({**TINY, "search_space": space,
                      "search": {**TINY["search"], "steps_per_epoch": 40,
                                 "epochs": 4, "warmup_epochs": 3, "grad_clip_norm": None,
                                 "divergence_factor": None,  # the NaN check alone
                                 "weight_optimizer": {"name": "sgd", "lr": 1000}}})
    with pytest.raises(FloatingPointError, match="train/loss is not finite .* at step"):
        run_search(study, search_data(images), lambda *a: None, runtime)
    assert 0 < len(steps) < 40  # not the rest of the epoch


def test_divergence_checks_wait_for_a_gpu_only_every_few_steps():
    from trainables.loops.parts import GPU_CHECK_EVERY, DivergenceGuard

    nan = torch.tensor(float("nan"))
    cpu, gpu = devices.Runtime(torch.device("cpu"), None, False), \
        devices.Runtime(torch.device("cuda"), None, True)
    with pytest.raises(FloatingPointError, match="not finite"):
        DivergenceGuard(100.0, cpu, "retrain.divergence_factor").update(nan, 3)
    on_gpu = DivergenceGuard(100.0, gpu, "retrain.divergence_factor")
    on_gpu.device = torch.device("cpu")  # the tensors on the CPU; the cadence a GPU's
    on_gpu.update(nan, 3)  # no check, no synchronisation
    with pytest.raises(FloatingPointError, match="not finite"):
        on_gpu.update(nan, GPU_CHECK_EVERY)
    DivergenceGuard(100.0, cpu, "retrain.divergence_factor").update(torch.tensor(1.0), 0)


def test_a_finite_loss_that_explodes_fails_at_the_hand_computed_step():
    """Running mean m <- 0.9 m + 0.1 loss from m = 1: after n steps at 200, m = 200 - 199 *
    0.9^n, which first exceeds 100 x the minimum (1) at n = 7 (0.9^6 = 0.531, 0.9^7 = 0.478).
    A slowly falling loss with a 10x spike never trips it; nor does anything with None."""
    from trainables.loops.parts import DivergenceGuard

    cpu = devices.Runtime(torch.device("cpu"), None, False)
    guard = DivergenceGuard(100.0, cpu, "retrain.divergence_factor")
    guard.update(torch.tensor(1.0), 0)
    for step in range(1, 7):
        guard.update(torch.tensor(200.0), step)
    with pytest.raises(FloatingPointError, match=r"diverged at step 7 .*\(over retrain\."
                                                 r"divergence_factor 100\)"):
        guard.update(torch.tensor(200.0), 7)

    falling = DivergenceGuard(100.0, cpu, "search.divergence_factor")
    losses = [0.5 * 0.97 ** step for step in range(200)]
    losses[150] *= 10
    for step, loss in enumerate(losses):
        falling.update(torch.tensor(loss), step)
    off = DivergenceGuard(None, cpu, "retrain.divergence_factor")
    for step, loss in enumerate([1.0] + [1e12] * 20):
        off.update(torch.tensor(loss), step)


def test_the_guard_resumes_from_its_state():
    """The running mean and minimum travel in the checkpoint: a guard restored after 4 steps
    fails at the same step as one that never stopped."""
    from trainables.loops.parts import DivergenceGuard

    cpu = devices.Runtime(torch.device("cpu"), None, False)
    first = DivergenceGuard(100.0, cpu, "retrain.divergence_factor")
    for step, loss in enumerate([1.0, 200.0, 200.0, 200.0]):
        first.update(torch.tensor(loss), step)
    resumed = DivergenceGuard(100.0, cpu, "retrain.divergence_factor", first.state())
    for step in range(4, 7):
        resumed.update(torch.tensor(200.0), step)
    with pytest.raises(FloatingPointError, match="diverged at step 7"):
        resumed.update(torch.tensor(200.0), 7)
    fresh = DivergenceGuard(100.0, cpu, "retrain.divergence_factor", {"mean": None})
    for step in range(8):  # a fresh guard's minimum is 200 itself
        fresh.update(torch.tensor(200.0), step)


def test_a_retraining_whose_loss_explodes_but_stays_finite_fails_with_the_reason(
        images, runtime):
    """The official HiNAS genotype under `variant: code`, retrained with the HiNAS code's step
    (SGD 0.05, momentum 0.9, clip_grad_value_ 5; hkzhang91/HiNAS `engine/trainer.py`) at a
    tiny batch: the loss grows by orders of magnitude and stays finite. Without the guard the
    run ends, reports and tests a network far below its noisy input; with it, it fails."""
    genotype = Genotype.from_json(open("studies/genotypes/hinas-official-3c4n.json").read())
    retrain = {"epochs": 2, "steps_per_epoch": 20, "batch_size": 4, "grad_clip_value": 5.0,
               "optimizer": {"name": "sgd", "lr": 0.05, "schedule": "constant"},
               "space_options": {"width": 4, "variant": "code"}}
    data = RetrainData(train=images[:3], val=images[3:], test_sets={"tiny": images[3:]})
    losses = []
    study = validate({**TINY, "retrain": {**retrain, "divergence_factor": None}})
    run_retrain(study, genotype, study.data.noise, data,
                lambda e, m, s: losses.append(m["train/loss"]), runtime)
    assert all(map(math.isfinite, losses)) and max(losses) > 100  # finite, and exploded
    study = validate({**TINY, "retrain": retrain})
    with pytest.raises(FloatingPointError, match=r"train/loss diverged at step \d+ of the "
                                                 r"epoch.*retrain\.divergence_factor 100"):
        run_retrain(study, genotype, study.data.noise, data, lambda *a: None, runtime)


def test_the_search_loop_anneals_the_temperature_by_global_step(images, runtime):
    """search_space.options.temperature reaches the loop: each epoch reports the schedule's
    value at the global step of its last training step."""
    from searchspaces.registry import get_space
    from searchspaces.superkernel.temperature import TemperatureSchedule

    options = {**get_space("superkernel").tiny_options(),
               "temperature": {"start": 1.0, "end": 0.1, "steps": 4}}
    study = validate({**TINY, "search_space": {"name": "superkernel", "options": options},
                      "search": {**TINY["search"], "strategy": "joint", "warmup_epochs": 0}})
    reports = []
    run_search(study, search_data(images), keep(reports), runtime)
    schedule = TemperatureSchedule(start=1.0, end=0.1, steps=4)
    steps = study.search.steps_per_epoch
    assert [m["search/temperature"] for _, m, _ in reports] == pytest.approx(
        [schedule.at(epoch * steps + steps - 1) for epoch in range(3)])


def test_the_search_loop_adds_the_width_penalty_on_architecture_steps(images, runtime,
                                                                       monkeypatch):
    """search_space.options.width_penalty reaches the loop: the supernet's penalty is taken on
    every architecture step (none in warm-up), never on weight steps."""
    from searchspaces.modnas.supernet import ModNASSupernet
    from searchspaces.registry import get_space

    calls = []
    real = ModNASSupernet.arch_penalty
    monkeypatch.setattr(ModNASSupernet, "arch_penalty",
                        lambda self: calls.append(1) or real(self))
    options = {**get_space("modnas").tiny_options(), "width_penalty": 0.5}
    study = validate({**TINY, "search_space": {"name": "modnas", "options": options}})
    run_search(study, search_data(images), lambda *a: None, runtime)
    arch_epochs = study.search.epochs - study.search.warmup_epochs
    assert len(calls) == arch_epochs * study.search.steps_per_epoch
