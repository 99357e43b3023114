"""MoD-NAS-specific behaviour: width rule, depth paths, unfolding update, derived network
size against the genotype's plan, baselines (plain NAS, depth by skip), options and
genotype validation."""

from __future__ import annotations

import copy
import dataclasses
import json

import pytest
import torch
from pydantic import ValidationError

from orchestrator.study.reading import StudyError, validate
from searchspaces.genotype import Genotype, GenotypeError
from searchspaces.modnas.derived import DerivedBlock
from searchspaces.modnas.plan import block_plan, full_width_arch, parameter_count
from searchspaces.modnas.unet import MixedLayer, SearchBlock, kept_channel_indices
from searchspaces.modnas.unfolding import ModelGuidedUnfolding
from searchspaces.registry import get_space
from trainables.loops.cost import count_parameters

SPACE = get_space("modnas")
TINY = SPACE.tiny_options()

# A literal genotype file (format documented in searchspaces/modnas/space.py).
LITERAL_GENOTYPE = """{
  "format": "nas-denoise-genotype", "version": 1, "space": "modnas",
  "primitives": ["conv_3x3", "conv_5x5", "sep_3x3", "sep_5x5", "dil_3x3", "dil_5x5",
                 "down_conv_3x3", "down_bilinear", "down_maxpool",
                 "up_deconv_3x3", "up_pixel_shuffle", "up_bilinear", "up_nearest"],
  "arch": {
    "stages": 1, "unfolding": true, "levels": 2, "width": 20, "channel_multiple": 8,
    "depth_search": "dense",
    "denoisers": [{
      "stem": {"channels": 16},
      "encoder": [{"layers": [{"op": "conv_3x3", "channels": 8, "input": 0},
                              {"op": "sep_3x3", "channels": 16, "input": 1},
                              {"op": "dil_5x5", "channels": 20, "input": 1}],
                   "down": {"op": "down_maxpool", "channels": 16}}],
      "decoder": [{"layers": [{"op": "conv_5x5", "channels": 8, "input": 0},
                              {"op": "sep_5x5", "channels": 8, "input": 0},
                              {"op": "conv_3x3", "channels": 16, "input": 2}]},
                  {"layers": [{"op": "dil_3x3", "channels": 8, "input": 0},
                              {"op": "conv_3x3", "channels": 16, "input": 1},
                              {"op": "conv_3x3", "channels": 8, "input": 0}],
                   "up": {"op": "up_pixel_shuffle", "channels": 8}}]
    }]
  },
  "provenance": {"trial": "t1", "epoch": 99}
}"""


def _supernet(**overrides):
    torch.manual_seed(0)
    return SPACE.build_supernet({**TINY, **overrides}, 1)


def _literal() -> dict:
    return json.loads(LITERAL_GENOTYPE)


# --- width --------------------------------------------------------------------------------
GATES = torch.tensor([0.1, 5.0, 0.2, 3.0, 1.0, 0.05, 0.5, 0.15])  # total 10


@pytest.mark.parametrize(
    ("rho", "multiple", "expected"),
    [
        (0.85, 1, [1, 3, 4]),  # 5 + 3 + 1 = 9 >= 8.5
        (0.85, 2, [1, 3, 4, 6]),  # k = 3 rounded up to 4: the next strongest gate joins
        (0.85, 3, [1, 3, 4]),
        (0.45, 1, [1]),  # 5 >= 4.5
        (0.75, 1, [1, 3]),  # 8 >= 7.5
        (1.0, 1, list(range(8))),
        (0.85, 8, list(range(8))),
        (0.1, 16, list(range(8))),  # never more than the width
    ],
)
def test_width_rule_keeps_the_channels_that_reach_rho(rho, multiple, expected):
    assert kept_channel_indices(GATES, rho, multiple) == expected


def test_width_rule_caps_at_width_when_width_is_not_a_multiple():
    assert len(kept_channel_indices(torch.ones(10), 0.9, 4)) == 10  # 9 -> 12 -> capped at 10
    assert len(kept_channel_indices(torch.ones(10), 0.5, 4)) == 8  # 5 -> 8


def test_layer_derives_channels_from_the_chosen_ops_gates():
    layer = MixedLayer(("conv_3x3", "sep_3x3"), width=8)
    with torch.no_grad():
        layer.alphas.copy_(torch.tensor([0.0, 1.0]))
        layer.gate_logits[0].fill_(5.0)  # conv: uniform, would keep everything
        layer.gate_logits[1].copy_(torch.tensor([9.0, 9.0, -9, -9, -9, -9, -9, -9]))
    assert layer.derive(rho=0.9, multiple=1) == {"op": "sep_3x3", "channels": 2}
    assert layer.derive(rho=0.9, multiple=4) == {"op": "sep_3x3", "channels": 4}


def test_gates_are_nonnegative_and_start_at_one():
    layer = MixedLayer(("conv_3x3", "dil_3x3"), width=4)
    assert torch.allclose(layer.gates(), torch.ones(2, 4))
    with torch.no_grad():
        layer.gate_logits.fill_(-50.0)
    assert (layer.gates() >= 0).all()


def test_derived_network_is_physically_narrower():
    genotype = Genotype.from_json(LITERAL_GENOTYPE)
    net = SPACE.build_derived(genotype, {}, 1)
    encoder = net.denoisers[0].encoders[0]
    assert sorted(encoder.layers) == ["1", "3"]  # layer 2 is dead: 3 <- 1 <- 0
    assert net.denoisers[0].stem.weight.shape == (16, 1, 3, 3)
    assert encoder.layers["1"][1].weight.shape == (8, 16, 3, 3)  # conv_3x3: stem 16 -> 8
    assert encoder.layers["3"][1].weight.shape == (20, 8, 5, 5)  # dil_5x5: layer 1's 8 -> 20
    assert net.denoisers[0].downs[0][2].weight.shape == (16, 20, 1, 1)  # maxpool + 1x1
    # decoder 0 reads max(skip 20, up 8) = 20 channels; its layer 2 is sep_5x5 20 -> 8
    top = net.denoisers[0].decoders[0]
    assert top.layers["2"][1].weight.shape == (20, 1, 5, 5)
    assert top.layers["2"][2].weight.shape == (8, 20, 1, 1)


# --- parameter count from the genotype ----------------------------------------------------
def _genotypes():
    yield "literal", Genotype.from_json(LITERAL_GENOTYPE)
    for name, overrides in [("tiny", {}), ("plain", {"unfolding": False, "stages": 1}),
                            ("skip_op", {"depth_search": "skip_op"}),
                            ("three_levels", {"levels": 3, "width": 12, "stages": 1})]:
        yield name, SPACE.set_one_hot(_supernet(**overrides))


@pytest.mark.parametrize("in_channels", [1, 3])
@pytest.mark.parametrize(("name", "genotype"), list(_genotypes()), ids=lambda v: str(v)[:12])
def test_derived_parameter_count_equals_the_genotypes(name, genotype, in_channels):
    net = SPACE.build_derived(genotype, {}, in_channels)
    assert count_parameters(net) == parameter_count(genotype.arch, in_channels)
    wide = dataclasses.replace(genotype, arch=full_width_arch(genotype.arch), provenance={})
    wide_net = SPACE.build_derived(wide, {}, in_channels)
    assert count_parameters(wide_net) == parameter_count(wide.arch, in_channels)
    assert count_parameters(net) < count_parameters(wide_net)


def test_literal_parameter_count_by_hand():
    arch = _literal()["arch"]
    conv = lambda i, o, k: k * k * i * o + o  # noqa: E731
    encoder = conv(16, 8, 3) + conv(8, 20, 5) + conv(20, 16, 1)  # layers 1, 3; maxpool + 1x1
    bottom = conv(16, 8, 3) + conv(8, 4 * 8, 3)  # layer 3 reads the block input; pixel shuffle
    top = 25 * 20 + conv(20, 8, 1) + conv(8, 16, 3)  # layers 2 (sep_5x5, reads 20) and 3
    stem_head = conv(1, 16, 3) + conv(16, 1, 3)
    assert parameter_count(arch, 1) == encoder + bottom + top + stem_head + 2


def test_supernet_provenance_compares_derived_and_full_width():
    genotype = SPACE.set_one_hot(_supernet())
    assert genotype.provenance["params_derived"] == parameter_count(genotype.arch, 1)
    assert genotype.provenance["params_derived"] < genotype.provenance["params_full_width"]


# --- depth ---------------------------------------------------------------------------------
def test_depth_derivation_keeps_one_path_per_layer():
    block = SearchBlock(("conv_3x3",), width=4, dense=True)
    with torch.no_grad():
        block.gammas[0].copy_(torch.tensor([0.3, -0.1]))  # layer 2 <- block input
        block.gammas[1].copy_(torch.tensor([-1.0, 0.2, 0.1]))  # layer 3 <- layer 1
    layers = block.derive(rho=0.9, multiple=4)
    assert [layer["input"] for layer in layers] == [0, 0, 1]
    plan = block_plan({"layers": layers}, 4, None)
    assert [layer.alive for layer in plan.layers] == [True, False, True]
    derived = DerivedBlock(plan)
    assert sorted(derived.layers) == ["1", "3"]
    assert derived.inputs == {1: 0, 3: 1}


def test_untouched_gammas_keep_the_full_chain():
    block = SearchBlock(("conv_3x3",), width=4, dense=True)
    assert [layer["input"] for layer in block.derive(rho=0.9, multiple=4)] == [0, 1, 2]


def test_dense_block_mixes_earlier_outputs_by_gamma():
    block = SearchBlock(("conv_3x3",), width=2, dense=True)
    x = torch.rand(1, 2, 4, 4)
    with torch.no_grad():
        block.gammas[0].copy_(torch.tensor([50.0, -50.0]))
        block.gammas[1].copy_(torch.tensor([50.0, -50.0, -50.0]))
    expected = block.layers[2](x)  # every path collapsed onto the block input
    assert torch.allclose(block(x), expected, atol=1e-6)


def test_skip_op_baseline_chains_layers_and_has_no_gamma():
    supernet = _supernet(depth_search="skip_op")
    blocks = [m for m in supernet.modules() if isinstance(m, SearchBlock)]
    assert blocks and all(len(block.gammas) == 0 for block in blocks)
    assert "skip" in supernet.derive().primitives
    genotype = SPACE.set_one_hot(supernet)
    layers = genotype.arch["denoisers"][0]["decoder"][0]["layers"]
    assert [layer["input"] for layer in layers] == [0, 1, 2]


# --- unfolding -----------------------------------------------------------------------------
class Scale(torch.nn.Module):
    def __init__(self, factor: float) -> None:
        super().__init__()
        self.factor = factor

    def forward(self, x):
        return self.factor * x


def test_unfolding_with_identity_denoisers_stays_at_y():
    model = ModelGuidedUnfolding([torch.nn.Identity(), torch.nn.Identity()])
    y = torch.rand(1, 1, 3, 3)
    assert torch.allclose(model(y), y)  # v_t = x_t and x_0 = y: x_t = y for every t


def test_unfolding_reproduces_the_closed_form_update():
    model = ModelGuidedUnfolding([Scale(0.5), Scale(0.5)])
    assert model.deltas.tolist() == pytest.approx([0.1, 0.1])
    assert model.etas.tolist() == pytest.approx([0.9, 0.9])
    with torch.no_grad():
        model.deltas.copy_(torch.tensor([0.1, 0.2]))
        model.etas.copy_(torch.tensor([0.9, 0.5]))
    y = torch.ones(1, 1, 1, 1)
    x1 = 1 - 0.1 * ((1 - 1) + 0.9 * (1 - 0.5))  # 0.955
    x2 = x1 - 0.2 * ((x1 - 1) + 0.5 * (x1 - 0.5 * x1))  # 0.91625
    assert model(y).item() == pytest.approx(x2, abs=1e-6)
    assert x2 == pytest.approx(0.91625)


def test_plain_baseline_is_one_denoiser_without_step_sizes():
    model = ModelGuidedUnfolding([Scale(0.5)], unfolding=False)
    assert list(model.parameters()) == []
    assert model(torch.ones(1, 1, 1, 1)).item() == 0.5


def test_every_gate_alpha_and_gamma_is_an_arch_parameter():
    supernet = _supernet()
    arch = {id(p) for p in supernet.arch_parameters()}
    names = ("alphas", "gate_logits", "gammas")
    searched = [n for n, p in supernet.named_parameters() if any(k in n for k in names)]
    assert searched and all(id(supernet.get_parameter(n)) in arch for n in searched)
    assert len(arch) == len(searched)


def test_step_sizes_are_weights_not_arch_parameters():
    supernet = _supernet()
    arch = {id(p) for p in supernet.arch_parameters()}
    weights = {id(p) for p in supernet.weight_parameters()}
    assert id(supernet.network.deltas) in weights and id(supernet.network.etas) in weights
    assert id(supernet.network.deltas) not in arch


# --- baselines through the conformance checks ------------------------------------------------
@pytest.mark.parametrize("overrides", [{"unfolding": False, "stages": 1},
                                       {"depth_search": "skip_op"}], ids=["plain", "skip_op"])
def test_baselines_search_derive_and_train(overrides):
    supernet = _supernet(**overrides)
    image = torch.rand(2, 1, 16, 16)
    (supernet(image) - image).square().mean().backward()
    for name, param in supernet.named_parameters():
        assert param.grad is not None and param.grad.abs().sum() > 0, name
    expected = SPACE.set_one_hot(supernet)
    assert supernet.derive().canonical() == expected.canonical()
    loaded = Genotype.from_json(expected.to_json())
    net = SPACE.build_derived(loaded, {**TINY, **overrides}, 1)
    assert net(image).shape == image.shape


def test_odd_image_sizes_are_padded_and_cropped():
    supernet = _supernet(levels=3, width=4)
    net = SPACE.build_derived(SPACE.set_one_hot(supernet), {}, 1)
    image = torch.rand(1, 1, 17, 23)
    assert supernet(image).shape == image.shape
    assert net(image).shape == image.shape


# --- options and genotype validation -----------------------------------------------------------
@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"stages": 0}, "stages"),
        ({"rho": 0.0}, "rho"),
        ({"rho": 1.5}, "rho"),
        ({"width": 8, "channel_multiple": 16}, "channel_multiple"),
        ({"unfolding": False, "stages": 3}, "stages"),
        ({"levels": 0}, "levels"),
        ({"normal_ops": ["conv_3x3", "down_maxpool"]}, "normal_ops"),
        ({"normal_ops": ["conv_3x3", "skip"]}, "normal_ops"),
    ],
)
def test_bad_options_name_the_field(overrides, field):
    with pytest.raises(ValidationError) as error:
        SPACE.parse_options(overrides)
    assert error.value.errors()[0]["loc"] == (field,)


def test_check_data_rejects_levels_the_patch_cannot_halve():
    options = SPACE.parse_options({"levels": 4})
    SPACE.check_data(options, 64)
    for patch_size in (16, 60):
        with pytest.raises(ValueError, match=r"^options\.levels: 4 levels need patch_size"):
            SPACE.check_data(options, patch_size)


def test_study_validation_reports_the_patch_size_conflict():
    study = {"name": "m", "data": {"patch_size": 24},
             "search_space": {"name": "modnas", "options": {"levels": 4}}}
    with pytest.raises(StudyError, match=r"search_space\.options\.levels: 4 levels"):
        validate(study)
    study["data"]["patch_size"] = 32
    assert validate(study).search_space.name == "modnas"


def _stage(document):
    return document["arch"]["denoisers"][0]


CORRUPTIONS = {
    "unknown op": (lambda d: _stage(d)["encoder"][0]["layers"][0].update(op="conv_7x7"),
                   "encoder[0].layers[0].op"),
    "down op in a normal layer": (
        lambda d: _stage(d)["decoder"][0]["layers"][1].update(op="down_maxpool"),
        "decoder[0].layers[1].op"),
    "skip without skip_op": (lambda d: _stage(d)["encoder"][0]["layers"][1].update(
        op="skip", channels=None), "encoder[0].layers[1].op"),
    "not a multiple": (lambda d: _stage(d)["encoder"][0]["layers"][0].update(channels=12),
                       "encoder[0].layers[0].channels"),
    "above the width": (lambda d: _stage(d)["decoder"][1]["up"].update(channels=24),
                        "decoder[1].up.channels"),
    "input out of range": (lambda d: _stage(d)["decoder"][1]["layers"][1].update(input=2),
                           "decoder[1].layers[1].input"),
    "layer 1 not reading the block input": (
        lambda d: _stage(d)["decoder"][1]["layers"][0].update(input=1),
        "decoder[1].layers[0].input"),
    "missing up": (lambda d: _stage(d)["decoder"][1].pop("up"), "decoder[1].up"),
    "up in the last block": (lambda d: _stage(d)["decoder"][0].update(
        up={"op": "up_nearest", "channels": 8}), "decoder[0].up"),
    "too few blocks": (lambda d: _stage(d)["encoder"].clear(), "denoisers[0].encoder"),
    "stem not a multiple": (lambda d: _stage(d)["stem"].update(channels=10),
                            "denoisers[0].stem.channels"),
    "missing stem": (lambda d: _stage(d).pop("stem"), "denoisers[0].stem"),
    "too many stages": (lambda d: d["arch"].update(stages=2), "arch.denoisers"),
    "plain with stages": (lambda d: d["arch"].update(unfolding=False, stages=2), "arch.stages"),
    "multiple above width": (lambda d: d["arch"].update(channel_multiple=32),
                             "arch.channel_multiple"),
    "op outside primitives": (lambda d: d["primitives"].remove("dil_5x5"),
                              "encoder[0].layers[2].op"),
}


@pytest.mark.parametrize("corruption", sorted(CORRUPTIONS))
def test_malformed_genotype_names_the_field(corruption):
    document = _literal()
    mutate, field = CORRUPTIONS[corruption]
    mutate(document)
    with pytest.raises(GenotypeError, match=field.replace("[", r"\[").replace(".", r"\.")):
        Genotype.from_dict(document)


def test_literal_genotype_round_trip():
    genotype = Genotype.from_json(LITERAL_GENOTYPE)
    assert genotype.provenance == {"trial": "t1", "epoch": 99}
    again = Genotype.from_json(genotype.to_json())
    assert again.canonical() == genotype.canonical()
    assert copy.deepcopy(genotype.arch) == _literal()["arch"]
