"""MoD-NAS `width_penalty` (ours, off by default): an L1 or a Hoyer term on the width gates
added to architecture steps only; 0 changes nothing, a positive L1 weight shrinks the
gates, a Hoyer weight pulls them apart so that the width rule drops channels, a negative
one is refused in one line naming the key."""

import pytest
import torch

from orchestrator.study.reading import StudyError, validate
from searchspaces.modnas.options import MAX_WIDTH_PENALTY
from searchspaces.registry import get_space
from trainables.loops import devices
from trainables.loops import search as search_loop
from trainables.loops.losses import DenoiseLoss

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


def _gate_logits(supernet) -> list[torch.nn.Parameter]:
    """Each distinct gate logit tensor once (the stages share theirs)."""
    found = {id(m.gate_logits): m.gate_logits for m in supernet.modules()
             if hasattr(m, "gate_logits")}
    return list(found.values())


def test_hoyer_is_the_mean_rows_sparsity_and_blind_to_scale():
    supernet = _supernet(width_penalty=2.0, width_regularizer="hoyer")
    rows = torch.stack(supernet.gate_rows())  # (rows, W)
    assert rows.shape[-1] == TINY["width"] and len(rows) * TINY["width"] == \
        len(supernet.width_gates())
    logits = _gate_logits(supernet)
    with torch.no_grad():  # rows of different spreads
        torch.manual_seed(3)
        for logit in logits:
            logit.normal_()
    rows = torch.stack(supernet.gate_rows()).detach()
    width = rows.shape[-1]
    expected = sum(float(r.sum() / (width ** 0.5 * r.norm())) for r in rows) / len(rows)
    assert supernet.arch_penalty().item() == pytest.approx(2.0 * expected, rel=1e-5)
    with torch.no_grad():  # scaling every gate by 3 leaves it unchanged (softplus^-1 of 3g)
        for logit in logits:
            logit.copy_(torch.log(torch.expm1(3 * torch.nn.functional.softplus(logit))))
    assert supernet.arch_penalty().item() == pytest.approx(2.0 * expected, rel=1e-4)


def test_hoyer_makes_the_width_rule_drop_channels_where_l1_does_not(runtime):
    """Gates a little apart (as the data gradient leaves them), the penalty alone for 40
    Adam steps: the L1 term shrinks every row about evenly, so the width rule (rho of each
    row's mass) keeps every channel; the Hoyer term pulls the rows apart, and it drops."""
    kept = {}
    for regularizer in ("l1", "hoyer"):
        supernet = _supernet(width_penalty=1.0, width_regularizer=regularizer, rho=0.9)
        logits = _gate_logits(supernet)
        with torch.no_grad():
            for logit in logits:
                spread = torch.linspace(-0.2, 0.2, logit.shape[-1])
                logit.add_(spread)
        optimizer = torch.optim.Adam(logits, lr=0.05)
        for _ in range(40):
            optimizer.zero_grad()
            supernet.arch_penalty().backward()
            optimizer.step()
        kept[regularizer] = supernet.derive().provenance["params_derived"]
    full = supernet.derive().provenance["params_full_width"]
    assert kept["l1"] == full and kept["hoyer"] < 0.8 * full
