"""MoD-NAS `width_penalty` (ours, off by default): an L1 term on the width gates added to
architecture steps only; 0 changes nothing, a positive weight shrinks the gates, a
negative one is refused in one line naming the key."""

import pytest
import torch

from orchestrator.studyfile import StudyError, validate
from searchspaces.modnas.space import MAX_WIDTH_PENALTY
from searchspaces.registry import get_space
from trainables import devices, search_loop
from trainables.losses import DenoiseLoss

SPACE = get_space("modnas")
TINY = {**SPACE.tiny_options(), "stem": "searched"}  # the stem's gates count too


@pytest.fixture(scope="module")
def runtime():
    return devices.configure(1, 0)


def _supernet(**overrides):
    torch.manual_seed(0)
    return SPACE.build_supernet({**TINY, **overrides}, 1)


def _batch():
    generator = torch.Generator().manual_seed(1)
    clean = torch.rand(2, 1, 16, 16, generator=generator)  # (B, C, H, W)
    return clean + 0.1 * torch.randn(clean.shape, generator=generator), clean


def _arch_steps(supernet, runtime, steps: int) -> None:
    optimizer = torch.optim.Adam(supernet.arch_parameters(), lr=0.05)
    for _ in range(steps):
        search_loop.loss_step(supernet, DenoiseLoss(), _batch(), [optimizer], runtime, None,
                              [], supernet.arch_penalty)


def test_default_adds_nothing(runtime):
    plain, explicit = _supernet(), _supernet(width_penalty=0.0)
    assert plain.arch_penalty() is None and explicit.arch_penalty() is None
    for supernet, penalty in ((plain, lambda: None), (explicit, explicit.arch_penalty)):
        optimizer = torch.optim.SGD(supernet.arch_parameters(), lr=0.0)
        search_loop.loss_step(supernet, DenoiseLoss(), _batch(), [optimizer], runtime, None,
                              [], penalty)
    for a, b in zip(plain.arch_parameters(), explicit.arch_parameters(), strict=True):
        assert torch.equal(a.grad, b.grad)


def test_penalty_is_the_weighted_mean_gate():
    supernet = _supernet(width_penalty=0.5)
    gates = supernet.width_gates()
    assert len(gates) > TINY["width"]  # every op's gates and the stem's
    assert torch.allclose(supernet.arch_penalty(), 0.5 * gates.mean())


def test_positive_weight_shrinks_the_gates(runtime):
    plain, penalised = _supernet(), _supernet(width_penalty=MAX_WIDTH_PENALTY)
    _arch_steps(plain, runtime, 3)
    _arch_steps(penalised, runtime, 3)
    with torch.no_grad():
        assert penalised.width_gates().mean() < plain.width_gates().mean() - 0.05


@pytest.mark.parametrize("value", [-0.1, MAX_WIDTH_PENALTY * 2])
def test_out_of_range_weight_is_one_line_naming_the_key(value):
    study = {"name": "m", "data": {"patch_size": 32},
             "search_space": {"name": "modnas", "options": {"width_penalty": value}}}
    with pytest.raises(StudyError) as error:
        validate(study)
    message = str(error.value)
    assert "search_space.options.width_penalty" in message and "\n" not in message
