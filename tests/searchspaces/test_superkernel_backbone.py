"""The superkernel backbones on tiny tensors: the SkipInit U-net of Sec. 3.2 (paper
layout) beside the compact one, the activation (ReLU / PReLU) through every block, the `mode` option
reaching every superkernel of a study's supernet, and the Gumbel temperature by step."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from torch import nn

from orchestrator.study.arms import arm_study, expand_arms
from orchestrator.study.reading import StudyError, load_study, validate
from searchspaces.genotype import Genotype, GenotypeError
from searchspaces.registry import get_space
from searchspaces.superkernel.attention_unet import AttentionUNet
from searchspaces.superkernel.blocks import ChannelAttention, ConvReLU, DCRBlock
from searchspaces.superkernel.distributions import DISTRIBUTIONS
from searchspaces.superkernel.operations import SuperConv2d
from searchspaces.superkernel.resunet import SkipInitUNet
from searchspaces.superkernel.supernet import SuperkernelSupernet
from searchspaces.superkernel.temperature import TemperatureSchedule
from trainables.data.bundles import SearchData
from trainables.data.embedded import embedded_images
from trainables.loops import devices
from trainables.loops.search import build_search, run_search

SPACE = get_space("superkernel")
STUDIES = Path(__file__).resolve().parents[2] / "studies"
TINY_STUDY = {
    "name": "tiny",
    "data": {"patch_size": 16, "noise": {"type": "awgn", "sigma": 25}},
    "search_space": {"name": "superkernel", "options": SPACE.tiny_options()},
    "search": {"epochs": 2, "steps_per_epoch": 2, "batch_size": 2, "val_crop": 16,
               "warmup_epochs": 0,
               "weight_optimizer": {"name": "adam", "lr": 1e-3, "schedule": "constant"},
               "arch_optimizer": {"name": "adam", "lr": 0.05, "schedule": "constant"}},
}


def _supernet(**overrides):
    torch.manual_seed(0)
    return SPACE.build_supernet({**SPACE.tiny_options(), **overrides}, 1)


def _study(**options) -> dict:
    space = {"name": "superkernel", "options": {**SPACE.tiny_options(), **options}}
    return {**TINY_STUDY, "search_space": space}


def _count(module: nn.Module, kind: type) -> int:
    return sum(isinstance(m, kind) for m in module.modules())


# --- backbone: Sec. 3.2 (paper) and compact ---------------------------------------------------
def test_paper_layout_has_a_conv_per_level_and_attention_after_each_concat():
    for depth in (1, 2):
        body = _supernet(depth=depth).network.subnets[0]
        assert isinstance(body, AttentionUNet)
        assert [type(encoder[0]) for encoder in body.encoders] == [ConvReLU] * (depth + 1)
        assert [type(decoder[0]) for decoder in body.decoders] == [ChannelAttention] * depth
        assert all(block.scale is not None for block in body.modules()
                   if isinstance(block, DCRBlock))  # SkipInit, unlike the attention U-net
    compact = _supernet(depth=2, layout="compact").network.subnets[0]
    assert isinstance(compact, SkipInitUNet) and _count(compact, ChannelAttention) == 0


def _conv(in_channels: int, out_channels: int, kernel: int = 3) -> int:
    return kernel * kernel * in_channels * out_channels + out_channels


def _dcr(channels: int, first: list[int], second: list[int]) -> int:
    (k0, f0), (k1, f1) = first, second
    return (_conv(channels, f0, k0) + _conv(channels + f0, f1, k1)
            + _conv(channels + f0 + f1, channels) + 1)  # + the SkipInit scalar


def test_paper_layout_derived_network_has_the_parameter_count_of_its_genotype():
    layers = {"sub0.enc0.dcr0.sk0": [5, 1], "sub0.enc0.dcr0.sk1": [3, 2],
              "sub0.enc1.dcr0.sk0": [3, 5], "sub0.enc1.dcr0.sk1": [5, 3],
              "sub0.dec0.dcr0.sk0": [3, 2], "sub0.dec0.dcr0.sk1": [5, 1]}
    arch = {"backbone": "resunet", "depth": 1, "width": 4, "blocks_per_level": 1,
            "num_subnets": 1, "layout": "paper", "activation": "relu", "layers": layers}
    genotype = Genotype.from_dict({"format": "nas-denoise-genotype", "version": 1,
                                   "space": "superkernel", "primitives": ["conv_3x3", "conv_5x5"],
                                   "arch": arch})
    width, attention = 4, _conv(8, 1, 1) + _conv(1, 8, 1)  # RCAN gate, 8 -> 8 // 8 -> 8
    expected = (
        _conv(1, width) + _dcr(width, layers["sub0.enc0.dcr0.sk0"], layers["sub0.enc0.dcr0.sk1"])
        + _conv(width, 2 * width)  # stride-2 down
        + _conv(2 * width, 2 * width)  # the level's conv + ReLU
        + _dcr(2 * width, layers["sub0.enc1.dcr0.sk0"], layers["sub0.enc1.dcr0.sk1"])
        + _conv(2 * width, 4 * width)  # pixel-shuffle up
        + attention + _conv(2 * width, width)  # channel attention on the concat, conv + ReLU
        + _dcr(width, layers["sub0.dec0.dcr0.sk0"], layers["sub0.dec0.dcr0.sk1"])
        + _conv(width, 1)  # tail
    )
    net = SPACE.build_derived(genotype, SPACE.tiny_options(), 1)
    assert sum(p.numel() for p in net.parameters()) == expected
    assert net(torch.rand(1, 1, 8, 8)).shape == (1, 1, 8, 8)


def test_a_genotype_without_layout_is_the_compact_network_it_was_written_for():
    supernet = _supernet(layout="compact")
    arch = {key: value for key, value in SPACE.set_one_hot(supernet).arch.items()
            if key not in ("layout", "activation")}
    legacy = Genotype("superkernel", ("conv_3x3", "conv_5x5"), arch)
    assert isinstance(SPACE.build_derived(legacy, {}, 1).subnets[0], SkipInitUNet)
    assert SPACE.set_one_hot(_supernet()).arch["layout"] == "paper"


@pytest.mark.parametrize("key, value", [("layout", "wide"), ("activation", "gelu")])
def test_bad_layout_or_activation_is_named(key, value):
    document = SPACE.set_one_hot(_supernet()).to_dict()
    document["arch"][key] = value
    with pytest.raises(GenotypeError, match=f"arch.{key}"):
        Genotype.from_dict(document)
    with pytest.raises(StudyError, match=f"options.{key}"):
        validate(_study(**{key: value}))


# Models 1 and 2 of Sec. 5.2 (grey input, no superkernel = the supernet's weights): the paper
# layout adds a 3x3 conv per level and a channel attention per decoder level
@pytest.mark.parametrize("depth, width, layout, params", [
    (3, 32, "paper", 6_772_241), (3, 32, "compact", 6_260_545),
    (2, 64, "paper", 11_493_301), (2, 64, "compact", 10_665_157)])
def test_parameter_counts_of_models_1_and_2(depth, width, layout, params):
    options = {"depth": depth, "width": width, "layout": layout}
    with torch.device("meta"):
        supernet = SPACE.build_supernet(options, 1)
        fixed = SPACE.build_supernet({**options, "superkernel": "none"}, 1)
    assert len(supernet.slots()) == (28 if depth == 3 else 20)  # Sec. 5.2.1
    assert sum(p.numel() for p in supernet.weight_parameters()) == params
    assert sum(p.numel() for p in fixed.parameters()) == params


# --- activation -------------------------------------------------------------------------------
@pytest.mark.parametrize("backbone", ["resunet", "attention_unet"])
def test_prelu_replaces_every_relu_but_the_attention_gates(backbone):
    supernet = _supernet(backbone=backbone, activation="prelu")
    genotype = SPACE.set_one_hot(supernet)
    assert genotype.arch["activation"] == "prelu"
    for net in (supernet, SPACE.build_derived(genotype, {}, 1)):
        gates = _count(net, ChannelAttention)
        assert _count(net, nn.ReLU) == gates and _count(net, nn.PReLU) > 6
    assert all(isinstance(slot.activation, nn.PReLU) for slot in supernet.slots())
    assert not any(isinstance(m, nn.PReLU) for m in _supernet(backbone=backbone).modules())


@pytest.mark.parametrize("kind", DISTRIBUTIONS)
def test_separate_is_exact_with_prelu(kind):
    torch.manual_seed(0)
    layer = SuperConv2d(3, (1, 3, 5), (2, 3, 5), kind, "separate", key_dim=3,
                        activation="prelu")
    with torch.no_grad():
        for param in layer.distribution.parameters():
            param.normal_()
    x = torch.randn(2, 3, 9, 9)
    weights, patterns = layer.distribution.relaxed()
    fused = layer._separate(x, weights, patterns)  # per-channel scales pulled out of PReLU
    assert torch.allclose(fused, layer.candidate_terms(x, weights, patterns), atol=1e-6, rtol=0)


# --- mode: the option reaches every superkernel of a study's supernet -----------------------
@pytest.mark.parametrize("backbone", ["resunet", "attention_unet"])
@pytest.mark.parametrize("mode", ["full", "separate"])
def test_mode_reaches_every_superkernel_and_its_forward(monkeypatch, mode, backbone):
    calls: dict[str, list[str]] = {"full": [], "separate": []}
    for path in calls:
        original = getattr(SuperConv2d, f"_{path}")

        def spy(self, *args, _path=path, _original=original):
            calls[_path].append(self.slot_name)
            return _original(self, *args)

        monkeypatch.setattr(SuperConv2d, f"_{path}", spy)
    study = validate(_study(mode=mode, backbone=backbone, num_subnets=2))
    supernet = build_search(study, devices.configure(1, 0)).supernet  # as the search trial
    slots = supernet.slots()
    assert len(slots) == 2 * 6  # two subnets of 3 DCR blocks
    assert {slot.mode for slot in slots} == {mode}
    supernet.train()(torch.rand(2, 1, 8, 8))
    other = "full" if mode == "separate" else "separate"
    assert sorted(calls[mode]) == sorted(slot.slot_name for slot in slots) and not calls[other]


# --- temperature by step ----------------------------------------------------------------------
def test_temperature_decays_over_its_steps_then_stays():
    schedule = TemperatureSchedule(start=2.0, end=0.5, steps=4)
    assert [schedule.at(step) for step in (0, 2, 4, 5, 10_000)] == [2.0, 1.0, 0.5, 0.5, 0.5]
    supernet = _supernet(temperature={"start": 2.0, "end": 0.5, "steps": 4})
    supernet.on_step(2)
    assert {slot.distribution.temperature for slot in supernet.slots()} == {1.0}
    assert supernet.search_metrics() == {"search/temperature": 1.0}


@pytest.mark.parametrize("options, key", [
    ({"temperature": {"start": 0.1, "end": 1.0}}, "search_space.options.temperature.end"),
    ({"temperature": {"steps": 0}}, "search_space.options.temperature.steps"),
    ({"temperature": {"start": 1, "width": 2}}, "search_space.options.temperature.width"),
    ({"tau_start": 2.0}, "tau_start: replaced by temperature.start"),
])
def test_bad_temperature_is_one_line_naming_the_key(options, key):
    with pytest.raises(StudyError) as caught:
        validate(_study(**options))
    assert key in str(caught.value) and "\n" not in str(caught.value)


def test_search_sets_the_temperature_every_step_and_logs_it(monkeypatch):
    images = embedded_images("train", color=False)[:4]
    data = SearchData(train_w=images[:2], train_a=images[2:3], val=images[3:])
    study = validate(_study(temperature={"start": 2.0, "end": 0.5, "steps": 2}))
    steps: list[int] = []
    original = SuperkernelSupernet.on_step

    def on_step(self, step: int) -> None:
        steps.append(step)
        original(self, step)

    monkeypatch.setattr(SuperkernelSupernet, "on_step", on_step)
    reports = []
    run_search(study, data, lambda epoch, metrics, state: reports.append(metrics),
               devices.configure(1, 0))
    assert steps[-4:] == [0, 1, 2, 3]  # global steps across both epochs
    assert [m["search/temperature"] for m in reports] == [1.0, 0.5]  # after steps 1 and 3


def test_every_shipped_superkernel_arm_anneals_alike():
    schedules = set()
    for name in ("superkernel", "ablations"):
        study = load_study(STUDIES / f"{name}.yaml")
        for arm in expand_arms(study):
            space = arm_study(study, arm).search_space
            if space.name == "superkernel":
                schedules.add(json.dumps(space.resolved_options()["temperature"]))
    assert schedules == {json.dumps({"start": 1.0, "end": 0.1, "steps": 10_000})}
