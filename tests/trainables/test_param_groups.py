"""Optimizer settings of the HiNAS code (solver/build.py): biases apart (no decay, twice the
lr) in retraining, Adam's betas as given (the code's default (0.9, 0.999) for the
architecture), no gradient clipping in the search (engine/searcher.py)."""

import pytest
import torch
from torch import nn

from studyspec.schema import OptimizerSpec, Study
from trainables.loops import devices
from trainables.loops.optim import build_optimizer, build_scheduler, parameter_names
from trainables.loops.search import build_search, loss_step

RETRAIN = {"name": "sgd", "lr": 0.05, "schedule": "poly", "weight_decay": 4e-5,
           "bias": {"weight_decay": 0.0, "lr_factor": 2.0}}


def tiny() -> nn.Module:
    return nn.Sequential(nn.Conv2d(1, 2, 3), nn.BatchNorm2d(2), nn.Conv2d(2, 1, 1, bias=False))


def test_biases_form_their_own_group():
    model = tiny()
    optimizer = build_optimizer(model.parameters(), OptimizerSpec(**RETRAIN).model_dump(),
                                parameter_names(model))
    weights, biases = optimizer.param_groups
    assert {id(p) for p in biases["params"]} == {id(model[0].bias), id(model[1].bias)}
    assert {id(p) for p in weights["params"]} == {id(model[0].weight), id(model[1].weight),
                                                  id(model[2].weight)}
    assert (weights["lr"], weights["weight_decay"]) == (0.05, 4e-5)
    assert (biases["lr"], biases["weight_decay"]) == (0.1, 0.0)


def test_a_step_decays_weights_not_biases_and_the_schedule_keeps_the_factor():
    model = tiny()
    spec = OptimizerSpec(**{**RETRAIN, "name": "sgd", "momentum": 0.0}).model_dump()
    optimizer = build_optimizer(model.parameters(), spec, parameter_names(model))
    scheduler = build_scheduler(optimizer, spec, 10)
    weight, bias = model[0].weight.detach().clone(), model[0].bias.detach().clone()
    for parameter in model.parameters():
        parameter.grad = torch.zeros_like(parameter)
    optimizer.step()
    scheduler.step()
    assert torch.allclose(model[0].weight, weight * (1 - 0.05 * 4e-5))
    assert torch.equal(model[0].bias, bias)
    weights, biases = optimizer.param_groups
    assert biases["lr"] == pytest.approx(2 * weights["lr"]) and weights["lr"] < 0.05


def test_without_bias_one_group():
    model = tiny()
    spec = OptimizerSpec(name="sgd", weight_decay=3e-4).model_dump()
    (group,) = build_optimizer(model.parameters(), spec, parameter_names(model)).param_groups
    assert len(group["params"]) == 5 and group["weight_decay"] == 3e-4


def study(**search) -> Study:
    return Study.model_validate({
        "name": "s", "search_space": {"name": "hinas", "options": {
            "num_layers": 2, "num_nodes": 2, "width": 3, "stem_channels": 4}},
        "search": {"epochs": 3, "warmup_epochs": 1, **search}})


def test_search_takes_betas_and_bias_groups_from_the_study():
    parts = build_search(study(
        arch_optimizer={"name": "adam", "lr": 1e-3, "schedule": "constant",
                        "betas": [0.9, 0.999], "weight_decay": 1e-3},
        weight_optimizer={"name": "sgd", "lr": 0.025, "bias": {"lr_factor": 3.0}}),
        devices.configure(1, 0))
    assert parts.arch_optimizer.param_groups[0]["betas"] == (0.9, 0.999)
    weights, biases = parts.weight_optimizer.param_groups
    assert biases["params"] and biases["lr"] == pytest.approx(0.075)
    names = parameter_names(parts.supernet)
    assert all(names[id(p)].endswith(".bias") for p in biases["params"])
    assert not any(names[id(p)].endswith(".bias") for p in weights["params"])


def test_no_clipping_when_the_norm_is_null():
    model = nn.Linear(1, 1, bias=False)
    batch = (torch.full((1, 1), 100.0), torch.zeros(1, 1))
    results = []
    for clip in (None, 1e-3):
        model.weight.data.fill_(1.0)
        optimizer = torch.optim.SGD(model.parameters(), lr=1.0)
        loss_step(model, nn.MSELoss(), batch, [optimizer], devices.configure(1, 0), clip,
                  list(model.parameters()))
        results.append(float(model.weight.detach()))
    assert results[0] == pytest.approx(1 - 2 * 100 * 100)  # d/dw (100 w)^2 = 2e4
    assert results[1] == pytest.approx(1 - 1e-3)


@pytest.mark.parametrize("bias, key", [({"weight_decay": -1}, "weight_decay"),
                                       ({"lr_factor": 0}, "lr_factor"),
                                       ({"lr_facter": 2}, "lr_facter")])
def test_bad_bias_settings_name_the_key(bias, key):
    from pydantic import ValidationError

    with pytest.raises(ValidationError) as caught:
        OptimizerSpec(bias=bias)
    assert [str(p) for p in caught.value.errors()[0]["loc"]] == ["bias", key]


def test_retraining_takes_bias_groups_from_the_study():
    from pathlib import Path

    from searchspaces.genotype import Genotype
    from trainables.loops.retrain import build_retrain

    path = Path(__file__).resolve().parents[2] / "studies/genotypes/hinas-official-3c4n.json"
    parsed = Study.model_validate({
        "name": "s", "search_space": {"name": "hinas", "options": {
            "num_layers": 3, "num_nodes": 4, "width": 2, "stem_channels": 4}},
        "retrain": {"optimizer": RETRAIN}})
    parts = build_retrain(parsed, Genotype.from_json(path.read_text()), devices.configure(1, 0))
    weights, biases = parts.optimizer.param_groups
    names = parameter_names(parts.model)
    assert biases["params"] and all(names[id(p)].endswith(".bias") for p in biases["params"])
    assert (biases["lr"], biases["weight_decay"]) == (0.1, 0.0)
