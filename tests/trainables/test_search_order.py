"""Bilevel alternation: the order of the two steps is the space's (MoD-NAS Algorithm 1:
weights, then architecture; HiNAS / DARTS: architecture first), and the architecture's
learning-rate schedule spans the epochs in which it steps (after the warm-up)."""

import pytest
import torch

from orchestrator.study.reading import validate
from searchspaces.registry import get_space
from trainables.loops import search as search_loop

SPACES = {
    "hinas": {"num_layers": 2, "num_nodes": 2, "width": 3, "stem_channels": 4},
    "modnas": get_space("modnas").tiny_options(),
}


def _study(space: str, epochs: int = 3, warmup: int = 1):
    return validate({
        "name": "order", "data": {"patch_size": 16, "noise": {"type": "awgn", "sigma": 25}},
        "search_space": {"name": space, "options": SPACES[space]},
        "search": {"epochs": epochs, "steps_per_epoch": 2, "batch_size": 2,
                   "warmup_epochs": warmup, "validate_from_epoch": 1, "val_crop": 24,
                   "strategy": "bilevel",
                   "arch_optimizer": {"name": "adam", "lr": 0.05, "lr_min": 0.001}},
    })


@pytest.mark.filterwarnings("ignore:Detected call of")  # the fake step never steps
@pytest.mark.parametrize(("space", "order"), [("modnas", ["w", "a", "w", "a"]),
                                              ("hinas", ["a", "w", "a", "w"])])
def test_bilevel_order_is_the_spaces(space, order, runtime, monkeypatch):
    study = _study(space)
    parts = search_loop.build_search(study, runtime)
    calls = []

    def fake_step(model, loss_fn, batch, optimizers, *args):
        calls.append("a" if optimizers == [parts.arch_optimizer] else "w")
        return torch.zeros(())

    monkeypatch.setattr(search_loop, "loss_step", fake_step)
    batches = lambda epoch: iter([None, None])  # noqa: E731  (the fake step ignores them)
    search_loop.train_epoch(parts, 0, study, runtime, batches, batches)
    assert calls == ["w", "w"]  # warm-up: weights only
    calls.clear()
    search_loop.train_epoch(parts, 1, study, runtime, batches, batches)
    assert calls == order
    expected = {"modnas": "weights_first", "hinas": "arch_first"}[space]
    assert get_space(space).bilevel_order == expected


@pytest.mark.parametrize("space", ["hinas", "modnas"])
def test_each_schedule_reaches_its_floor_on_its_last_step(space, runtime):
    """The weight schedule spans every step; the architecture's only the steps after
    warm-up (sized for all epochs it ended well above its floor: 3.5e-4 of 1e-6 with
    MoD-NAS's 40 of 100 warm-up epochs)."""
    study = _study(space, epochs=4, warmup=1)
    parts = search_loop.build_search(study, runtime)
    steps = study.search.steps_per_epoch
    arch_lrs, weight_lrs = [], []
    for epoch in range(study.search.epochs):
        for _ in range(steps):
            parts.weight_optimizer.step()
            parts.weight_scheduler.step()
            if epoch >= study.search.warmup_epochs:
                parts.arch_optimizer.step()
                parts.arch_scheduler.step()
                arch_lrs.append(parts.arch_optimizer.param_groups[0]["lr"])
            weight_lrs.append(parts.weight_optimizer.param_groups[0]["lr"])
    assert len(arch_lrs) == (study.search.epochs - study.search.warmup_epochs) * steps
    assert arch_lrs[-1] == pytest.approx(study.search.arch_optimizer.lr_min)
    assert arch_lrs[-2] > arch_lrs[-1]  # still decaying on the step before the last
    assert weight_lrs[-1] == pytest.approx(study.search.weight_optimizer.lr_min)
