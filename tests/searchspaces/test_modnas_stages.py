"""One MoD-NAS architecture for all T stages (MoD-NAS Sec. 3, Table 2): the supernet ties the
stages' architecture parameters, derives one denoiser, and `at_stages` unrolls it to any
T with parameters linear in T (MoD-NAS Table 2: 418k, 1,253k, 2,506k). The per-stage
variant (`share_architecture: false`) stays available and refuses other T."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from orchestrator.study.reading import StudyError, validate
from searchspaces.genotype import Genotype, GenotypeError
from searchspaces.modnas.unet import MixedLayer
from searchspaces.registry import get_space
from trainables.loops.cost import count_parameters

SPACE = get_space("modnas")
TABLE7 = Path(__file__).parent / "data" / "modnas_table7.json"
TINY = {**SPACE.tiny_options(), "stages": 3}


def _supernet(**options):
    torch.manual_seed(0)
    return SPACE.build_supernet({**TINY, **options}, 1)


def test_shared_stages_hold_the_first_stages_architecture_and_their_own_weights():
    supernet = _supernet()
    first, *others = supernet.network.denoisers
    layers = [[m for m in unet.modules() if isinstance(m, MixedLayer)] for unet in
              supernet.network.denoisers]
    for other_layers in layers[1:]:
        for own, shared in zip(other_layers, layers[0], strict=True):
            assert own.alphas is shared.alphas and own.gate_logits is shared.gate_logits
    for other in others:
        assert all(a is not b for a, b in zip(first.encoders[0].layers[0].ops.parameters(),
                                              other.encoders[0].layers[0].ops.parameters()))
    one_stage = _supernet(stages=1)
    assert len(supernet.arch_parameters()) == len(one_stage.arch_parameters())
    assert len({id(p) for p in supernet.arch_parameters()}) == len(supernet.arch_parameters())
    arch_ids = {id(p) for p in supernet.arch_parameters()}
    assert not arch_ids & {id(p) for p in supernet.weight_parameters()}
    genotype = supernet.derive()
    assert genotype.arch["share_architecture"] and len(genotype.arch["denoisers"]) == 1
    assert genotype.arch["stages"] == 3


def test_the_shared_architecture_gradient_is_the_sum_over_the_stages():
    """Same weights and architecture values in a shared and a per-stage supernet: the shared
    alpha's gradient is the sum of the three per-stage alphas' gradients."""
    shared, separate = _supernet(), _supernet(share_architecture=False)
    separate.load_state_dict(shared.state_dict())  # tied keys: the same values
    image = torch.rand(2, 1, 16, 16)
    for net in (shared, separate):
        net.zero_grad()
        net(image).square().mean().backward()
    layer = [m for m in shared.network.denoisers[0].modules() if isinstance(m, MixedLayer)][0]
    per_stage = [[m for m in unet.modules() if isinstance(m, MixedLayer)][0]
                 for unet in separate.network.denoisers]
    torch.testing.assert_close(layer.alphas.grad, sum(m.alphas.grad for m in per_stage),
                               atol=0, rtol=1e-4)  # the gradients are ~1e-6
    assert all(m.alphas.grad.abs().sum() > 0 for m in per_stage)


@pytest.mark.parametrize("stages", [1, 3, 6])
def test_table7_unrolled_to_t_stages_grows_linearly(stages):
    """Table 2: T = 3 and T = 6 have 3x and 6x the parameters of T = 1, delta_t and eta_t
    (2 per stage) aside; the genotype keeps its searched T in its provenance."""
    genotype = Genotype.load(TABLE7)
    unrolled = SPACE.at_stages(genotype, stages)
    net = SPACE.build_derived(unrolled, {}, 1)
    per_stage = count_parameters(SPACE.build_derived(genotype, {}, 1)) - 2
    assert len(net.denoisers) == stages
    assert count_parameters(net) == stages * (per_stage + 2)
    assert unrolled.arch["denoisers"] == genotype.arch["denoisers"]
    assert (unrolled is genotype) == (stages == 1)


def test_per_stage_and_plain_genotypes_refuse_other_stage_counts():
    separate = _supernet(share_architecture=False).derive()
    assert len(separate.arch["denoisers"]) == 3
    assert SPACE.at_stages(separate, 3) is separate
    with pytest.raises(ValueError, match="one architecture per stage"):
        SPACE.at_stages(separate, 6)
    plain = _supernet(unfolding=False, stages=1).derive()
    with pytest.raises(ValueError, match="no unfolding"):
        SPACE.at_stages(plain, 3)


def test_genotype_denoiser_count_follows_share_architecture():
    document = json.loads(TABLE7.read_text())
    document["arch"]["denoisers"] *= 2
    with pytest.raises(GenotypeError, match=r"arch\.denoisers: expected one denoiser"):
        Genotype.from_dict(document)
    document["arch"]["share_architecture"] = False
    Genotype.from_dict({**document, "arch": {**document["arch"], "stages": 2}})
    document["version"] = 2
    with pytest.raises(GenotypeError, match=r"arch\.share_architecture: unknown key"):
        Genotype.from_dict(document)


def _study(retrain_stages, **options):
    return {"name": "stages", "data": {"train": "embedded", "test": ["embedded"],
                                       "patch_size": 16},
            "search_space": {"name": "modnas", "options": {
                "stages": 2, "levels": 2, "width": 8, "channel_multiple": 4, **options}},
            "retrain": {"stages": retrain_stages}}


@pytest.mark.parametrize("stages,options,message", [
    ([], {}, r"retrain\.stages.*at least 1"),
    ([0, 1], {}, r"retrain\.stages\.0"),
    ([3, 3], {}, r"retrain\.stages.*twice"),
    ([1, 3], {"share_architecture": False}, r"retrain\.stages.*one architecture per stage"),
    ([2], {"unfolding": False, "stages": 1}, r"retrain\.stages.*without unfolding"),
])
def test_bad_retrain_stages_name_the_key(stages, options, message):
    with pytest.raises(StudyError, match=message) as error:
        validate(_study(stages, **options))
    assert len(str(error.value).splitlines()) == 1
    validate(_study([1, 3, 6]))  # the paper's: one search, T = 1, 3, 6
