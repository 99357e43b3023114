"""Superkernel NAS specifics on tiny tensors: distilled networks, SkipInit, the
backbones, the no-superkernel baseline, options, genotypes, and the joint
single-level search loop (the convolution itself: test_superconv.py)."""

from __future__ import annotations

import copy
import json

import pytest
import torch
from pydantic import ValidationError

from orchestrator.study.reading import validate
from searchspaces.genotype import Genotype, GenotypeError
from searchspaces.registry import get_space
from searchspaces.superkernel.blocks import DCRBlock
from searchspaces.superkernel.distributions import (
    DISTRIBUTIONS,
)
from searchspaces.superkernel.operations import SuperConv2d
from searchspaces.superkernel.supernet import FixedSupernet
from trainables.data.bundles import SearchData
from trainables.data.embedded import embedded_images
from trainables.loops import devices
from trainables.loops.search import Best, run_search, update_best

SPACE = get_space("superkernel")

LITERAL_GENOTYPE = """{
  "format": "nas-denoise-genotype", "version": 1, "space": "superkernel",
  "primitives": ["conv_3x3", "conv_5x5"],
  "arch": {
    "backbone": "resunet", "depth": 1, "width": 4, "blocks_per_level": 1, "num_subnets": 1,
    "layers": {
      "sub0.enc0.dcr0.sk0": [5, 1], "sub0.enc0.dcr0.sk1": [3, 2],
      "sub0.enc1.dcr0.sk0": [3, 5], "sub0.enc1.dcr0.sk1": [5, 3],
      "sub0.dec0.dcr0.sk0": [3, 2], "sub0.dec0.dcr0.sk1": [5, 1]
    }
  },
  "provenance": {"trial": "t1", "epoch": 3, "val_psnr": 27.5}
}"""


def _supernet(**overrides):
    torch.manual_seed(0)
    return SPACE.build_supernet({**SPACE.tiny_options(), **overrides}, 1)


# --- distilled networks -----------------------------------------------------------------------
def _conv(in_channels: int, out_channels: int, kernel: int) -> int:
    return kernel * kernel * in_channels * out_channels + out_channels


def _dcr(channels: int, first: list[int], second: list[int]) -> int:
    (k0, f0), (k1, f1) = first, second
    return (_conv(channels, f0, k0) + _conv(channels + f0, f1, k1)
            + _conv(channels + f0 + f1, channels, 3) + 1)  # + the SkipInit scalar


def test_derived_network_has_the_parameter_count_of_its_genotype():
    genotype = Genotype.from_json(LITERAL_GENOTYPE)
    layers, width = genotype.arch["layers"], 4
    expected = (
        _conv(1, width, 3)  # head
        + _dcr(width, layers["sub0.enc0.dcr0.sk0"], layers["sub0.enc0.dcr0.sk1"])
        + _conv(width, 2 * width, 3)  # stride-2 down
        + _dcr(2 * width, layers["sub0.enc1.dcr0.sk0"], layers["sub0.enc1.dcr0.sk1"])
        + _conv(2 * width, 4 * width, 3)  # pixel-shuffle up
        + _conv(2 * width, width, 1)  # merge with the skip
        + _dcr(width, layers["sub0.dec0.dcr0.sk0"], layers["sub0.dec0.dcr0.sk1"])
        + _conv(width, 1, 3)  # tail
    )
    net = SPACE.build_derived(genotype, SPACE.tiny_options(), 1)
    assert sum(p.numel() for p in net.parameters()) == expected
    assert net(torch.rand(1, 1, 8, 8)).shape == (1, 1, 8, 8)


def test_derived_network_is_physically_smaller_than_the_supernet():
    supernet = _supernet(backbone="attention_unet", num_subnets=2, depth=1, width=4)
    genotype = SPACE.set_one_hot(supernet)
    net = SPACE.build_derived(genotype, {}, 1)
    convs = dict(net.named_modules())
    for slot in supernet.slots():
        path = next(n for n, m in supernet.named_modules() if m is slot).removeprefix("network.")
        kernel_size, filters = genotype.arch["layers"][slot.slot_name]
        assert convs[path][0].weight.shape[::2] == (filters, kernel_size)
    assert sum(p.numel() for p in net.parameters()) < sum(
        p.numel() for p in supernet.weight_parameters())


# --- backbones ------------------------------------------------------------------------------
def test_skipinit_blocks_are_the_identity_at_initialisation():
    def make_slot(name, in_channels, width):
        return SuperConv2d(in_channels, (3, 5), (2, 3), "joint"), 3

    block, x = DCRBlock("b", 4, make_slot, skipinit_scale=0.0), torch.randn(2, 4, 8, 8)
    assert torch.equal(block(x), x)
    assert block.scale.requires_grad
    supernet = SPACE.build_supernet({"depth": 1, "width": 4, "blocks_per_level": 1}, 1)
    blocks = [m for m in supernet.modules() if isinstance(m, DCRBlock)]
    assert len(blocks) == 3 and all(b.scale.item() == 0.0 for b in blocks)


@pytest.mark.parametrize("backbone, depth, blocks, slots", [
    ("resunet", 3, 2, 28), ("resunet", 2, 2, 20), ("attention_unet", 2, 1, 10)])
def test_slot_counts_match_the_paper(backbone, depth, blocks, slots):
    options = {"backbone": backbone, "depth": depth, "width": 2, "blocks_per_level": blocks}
    assert len(SPACE.build_supernet(options, 1).slots()) == slots  # Sec. 5.2.1: 28 / 20


@pytest.mark.parametrize("kind", DISTRIBUTIONS)
@pytest.mark.parametrize("mode", ["full", "separate"])
def test_attention_supernet_runs_on_odd_sizes(kind, mode):
    torch.manual_seed(0)
    image = torch.rand(1, 3, 11, 13)
    supernet = SPACE.build_supernet({**SPACE.tiny_options(), "backbone": "attention_unet",
                                     "num_subnets": 2, "superkernel": kind, "mode": mode}, 3)
    assert supernet(image).shape == image.shape


def test_paper_defaults_per_backbone():
    resunet = SPACE.parse_options({})
    attention = SPACE.parse_options({"backbone": "attention_unet"})
    assert (resunet.kernel_sizes, resunet.growth_rates) == ((3, 5), (0.2, 0.4, 0.6))
    assert (attention.kernel_sizes, attention.growth_rates) == ((3, 5, 7), (1.0, 0.5, 0.25))
    assert SPACE.default_strategy == "joint"


# --- no-superkernel baseline ----------------------------------------------------------------
def test_no_superkernel_baseline_is_the_largest_fixed_network():
    supernet = _supernet(superkernel="none")
    assert isinstance(supernet, FixedSupernet) and supernet.arch_parameters() == []
    genotype = supernet.derive()
    assert genotype.primitives == ("conv_5x5",)
    assert {tuple(v) for v in genotype.arch["layers"].values()} == {(5, 2), (5, 5)}  # 0.6 x 4, 8
    searched = SPACE.set_one_hot(_supernet())
    assert set(genotype.arch["layers"]) == set(searched.arch["layers"])
    custom = _supernet(superkernel="none", fixed_kernel_size=3, fixed_growth=0.2).derive()
    assert {tuple(v) for v in custom.arch["layers"].values()} == {(3, 1), (3, 2)}


# --- options and genotypes ------------------------------------------------------------------
@pytest.mark.parametrize("options, key", [
    ({"kernel_sizes": []}, "kernel_sizes"),
    ({"kernel_sizes": [3, 4]}, "kernel_sizes"),
    ({"growth_rates": []}, "growth_rates"),
    ({"growth_rates": [0.5, 1.5]}, "growth_rates"),
    ({"growth_rates": [0.0]}, "growth_rates"),
    ({"fixed_kernel_size": 2}, "fixed_kernel_size"),
    ({"fixed_growth": 0}, "fixed_growth"),
    ({"temperature": {"start": 0.1, "end": 1.0}}, "end"),
])
def test_bad_options_name_the_key(options, key):
    with pytest.raises(ValidationError) as caught:
        SPACE.parse_options(options)
    assert key in str(caught.value)


def test_bad_options_are_one_line_study_errors():
    study = {"name": "x", "search_space": {"name": "superkernel",
                                           "options": {"kernel_sizes": [3, 4]}}}
    with pytest.raises(ValueError) as caught:
        validate(study)
    assert "options.kernel_sizes" in str(caught.value) and "\n" not in str(caught.value)


def test_patch_size_must_fit_the_downsamplings():
    study = {"name": "x", "data": {"patch_size": 36}, "search_space": {"name": "superkernel"}}
    with pytest.raises(ValueError, match="options.depth"):
        validate(study)


def test_literal_genotype_round_trip():
    genotype = Genotype.from_json(LITERAL_GENOTYPE)
    assert genotype.arch["layers"]["sub0.enc1.dcr0.sk0"] == [3, 5]
    assert Genotype.from_json(genotype.to_json()).canonical() == genotype.canonical()


@pytest.mark.parametrize("corrupt, field", [
    (lambda d: d["arch"]["layers"].pop("sub0.dec0.dcr0.sk1"), "sub0.dec0.dcr0.sk1"),
    (lambda d: d["arch"]["layers"].update({"sub1.enc0.dcr0.sk0": [3, 1]}), "sub1.enc0"),
    (lambda d: d["arch"]["layers"].update({"sub0.enc0.dcr0.sk0": [7, 1]}), "kernel size 7"),
    (lambda d: d["arch"]["layers"].update({"sub0.enc0.dcr0.sk0": [3, 0]}), "filters"),
    (lambda d: d["arch"]["layers"].update({"sub0.enc0.dcr0.sk0": [3, 999]}),
     "sub0.enc0.dcr0.sk0: 999 filters exceed the level width"),
    (lambda d: d["arch"].update(backbone="vgg"), "arch.backbone"),
    (lambda d: d["arch"].update(depth=0), "arch.depth"),
    (lambda d: d.update(primitives=["conv_4x4"]), "primitives"),
])
def test_malformed_genotypes_name_the_field(corrupt, field):
    document = json.loads(LITERAL_GENOTYPE)
    corrupt(document)
    with pytest.raises(GenotypeError, match=field):
        Genotype.from_dict(document)


# --- joint single-level search (Mozejko et al. 2020, Sec. 4.3) ---------------------------
TINY_STUDY = {
    "name": "tiny",
    "data": {"patch_size": 16, "noise": {"type": "awgn", "sigma": 25}},
    "search_space": {"name": "superkernel", "options": SPACE.tiny_options()},
    "search": {"epochs": 2, "steps_per_epoch": 2, "batch_size": 2, "warmup_epochs": 0,
               "val_crop": 16, "select_by": "psnr", "grad_clip_norm": None,
               "weight_optimizer": {"name": "adam", "lr": 1e-3, "schedule": "constant"},
               "arch_optimizer": {"name": "adam", "lr": 0.05, "schedule": "constant"}},
}


@pytest.fixture(scope="module")
def search_data():
    images = embedded_images("train", color=False)[:4]
    return SearchData(train_w=images[:2], train_a=images[2:3], val=images[3:])


def test_joint_search_steps_weights_and_logits_together(search_data):
    study = validate(TINY_STUDY)
    assert study.search.strategy == "joint"  # the space's default
    reports = []
    genotype = run_search(study, search_data, lambda *r: reports.append(copy.deepcopy(r)),
                          devices.configure(1, 0))
    first, last = reports[0][2]["model"], reports[-1][2]["model"]
    logits = [key for key in first if key.endswith("distribution.logits")]
    assert logits and all(not torch.equal(first[k], last[k]) for k in logits)
    best = reports[-1][2]["best"]
    assert best["score"] == max(m["val/psnr"] for _, m, _ in reports)  # select_by: psnr
    assert genotype.space == "superkernel"


def test_patience_counts_evaluations_without_psnr_improvement():
    study = validate({**TINY_STUDY, "search": {**TINY_STUDY["search"], "patience": 2}})
    best, supernet = Best(), _supernet()
    history = [(20.0, 1.0), (19.0, 2.0), (20.0, 3.0)]  # val/score improves, val/psnr does not
    stops = [update_best(best, epoch, {"val/psnr": psnr, "val/score": score}, supernet, study)
             for epoch, (psnr, score) in enumerate(history)]
    assert stops == [False, False, True]
    assert (best.epoch, best.score) == (0, 20.0)


def test_baseline_searches_without_arch_params(search_data):
    study = {**TINY_STUDY, "search": {**TINY_STUDY["search"], "epochs": 1}}
    study["search_space"] = {"name": "superkernel",
                             "options": {**SPACE.tiny_options(), "superkernel": "none"}}
    genotype = run_search(validate(study), search_data, lambda *r: None, devices.configure(1, 0))
    assert genotype.primitives == ("conv_5x5",)
