"""`schedule: poly_cosine`, the HiNAS code's search schedule (solver/lr_scheduler.py,
PolyCosineAnnealingLR stepped at each epoch's start in engine/searcher.py), against hand
computations: lr_e = 0.001 + 0.024 (1 + cos(pi e / 10)) / 2 (1 - e / 100) ** 0.9."""

import pytest
import torch
from pydantic import ValidationError

from studyspec.schema import OptimizerSpec
from trainables.loops.optim import build_scheduler, lr_factor

SPEC = {"name": "sgd", "lr": 0.025, "lr_min": 0.001, "schedule": "poly_cosine",
        "period_epochs": 10}
STEPS_PER_EPOCH, EPOCHS = 25, 100
# (0-based step, lr): epoch e = step // 25 + 1; e = 5: cos(pi/2) = 0, so 0.001 + 0.012 *
# 0.95 ** 0.9; e = 10: cos(pi) = -1, lr_min; e = 20: cos(2 pi) = 1, 0.001 + 0.024 * 0.8 ** 0.9
HAND = [(0, 0.024201858346380115), (24, 0.024201858346380115), (25, 0.022317062618094845),
        (100, 0.012458624579457997), (225, 0.001), (475, 0.020633251505220603),
        (2475, 0.001)]


def lrs_at(spec: dict, steps: list[int]) -> dict[int, float]:
    parameter = torch.nn.Parameter(torch.zeros(1))
    optimizer = torch.optim.SGD([parameter], lr=spec["lr"])
    scheduler = build_scheduler(optimizer, OptimizerSpec(**spec).model_dump(),
                                EPOCHS * STEPS_PER_EPOCH, STEPS_PER_EPOCH)
    seen = {}
    for step in range(max(steps) + 1):
        seen[step] = optimizer.param_groups[0]["lr"]
        optimizer.step()
        scheduler.step()
    return {step: seen[step] for step in steps}


def test_poly_cosine_matches_the_hand_computation():
    lrs = lrs_at(SPEC, [step for step, _ in HAND])
    for step, expected in HAND:
        assert lrs[step] == pytest.approx(expected, rel=1e-12), step


def test_period_and_power_are_used():
    # e = 5 with period 20: (1 + cos(pi / 4)) / 2; power 2: 0.95 ** 2
    lrs = lrs_at({**SPEC, "period_epochs": 20, "power": 2.0}, [100])
    assert lrs[100] == pytest.approx(0.001 + 0.024 * 0.8535533905932737 * 0.9025, rel=1e-12)


def test_default_period_is_the_code_t_max():
    assert lrs_at({**SPEC, "period_epochs": None}, [100])[100] == pytest.approx(HAND[3][1])


def test_plain_poly_power():
    assert lr_factor("poly", 50, 100, 1.0, 0.0, power=2.0) == pytest.approx(0.25)
    assert lr_factor("poly", 50, 100, 1.0, 0.0) == pytest.approx(0.5**0.9)


def test_a_linear_warm_up_scales_the_first_steps_of_the_schedule():
    """warmup_steps 4 on poly(0.9) over 2,500 steps from 0.05: step s < 4 at (s + 1) / 4 of
    the schedule's lr 0.05 (1 - s / 2500) ** 0.9; from step 4 on the schedule alone."""
    spec = {"name": "sgd", "lr": 0.05, "lr_min": 0.0, "schedule": "poly", "warmup_steps": 4}
    lrs = lrs_at(spec, [0, 1, 3, 4, 100])
    assert lrs[0] == pytest.approx(0.05 * 0.25, rel=1e-12)
    assert lrs[1] == pytest.approx(0.05 * 0.5 * (1 - 1 / 2500) ** 0.9, rel=1e-12)
    assert lrs[3] == pytest.approx(0.05 * (1 - 3 / 2500) ** 0.9, rel=1e-12)
    assert lrs[4] == pytest.approx(0.05 * (1 - 4 / 2500) ** 0.9, rel=1e-12)
    assert lrs[100] == pytest.approx(0.05 * 0.96 ** 0.9, rel=1e-12)


@pytest.mark.parametrize("spec, key", [
    ({"warmup_steps": -1}, "warmup_steps"),
    ({"schedule": "poly_cosines"}, "schedule"),
    ({"schedule": "poly_cosine", "period_epochs": 0}, "period_epochs"),
    ({"schedule": "cosine", "period_epochs": 10}, "period_epochs"),
    ({"power": 0}, "power"),
])
def test_bad_schedules_name_their_key(spec, key):
    with pytest.raises(ValidationError) as caught:
        OptimizerSpec(**spec)
    assert str(caught.value.errors()[0]["loc"][0]) == key


def test_the_search_loop_schedules_by_its_epochs():
    from studyspec.schema import Study
    from trainables.loops import devices
    from trainables.loops.search import build_search

    study = Study.model_validate({
        "name": "s", "search_space": {"name": "hinas", "options": {
            "num_layers": 2, "num_nodes": 2, "width": 3, "stem_channels": 4}},
        "search": {"epochs": 100, "steps_per_epoch": 25, "warmup_epochs": 20,
                   "weight_optimizer": SPEC}})
    parts = build_search(study, devices.configure(1, 0))
    seen = []
    for _ in range(101):
        seen.append(parts.weight_optimizer.param_groups[0]["lr"])
        parts.weight_optimizer.step()  # no gradients: nothing moves
        parts.weight_scheduler.step()
    assert seen[0] == seen[24] == pytest.approx(HAND[0][1])
    assert seen[100] == pytest.approx(HAND[3][1])
