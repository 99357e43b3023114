"""MoD-NAS as the paper builds it (appendix Tables 7/8): the paper's candidate sets,
concatenating skip joins and the fixed two-conv stem by default, the earlier
choices as options, version-1 genotypes still loading with the earlier
behaviour, and the searched T = 1 denoiser of Table 7 at its published size."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from orchestrator.study.reading import StudyError, validate
from searchspaces.genotype import Genotype
from searchspaces.modnas.operations import CANDIDATE_SETS, OPS
from searchspaces.modnas.plan import full_width_arch, parameter_count, unet_plan
from searchspaces.modnas.skeleton import ConcatJoin
from searchspaces.registry import get_space
from trainables.loops.cost import count_parameters

SPACE = get_space("modnas")
TABLE7 = Path(__file__).parent / "data" / "modnas_table7.json"
PAPER_T1_PARAMS = 418_000  # MoD-NAS Table 2 / appendix Table 6, T = 1


def _table7() -> Genotype:
    return Genotype.load(TABLE7)


def test_table7_network_has_the_papers_418k_parameters():
    """The derived T = 1 network of Table 7 (MoD-NAS-B), built from its genotype at the
    paper's base width (64, m = 8), has 420,927 parameters: +0.7% against the paper's
    418k. The table gives every layer's op and widths but not the kernel sizes; we read
    3x3 for every conv, the interpolations' channel-conversion convs and the join convs
    (1x1 joins, `skip_join: concat1x1`, give 366,911, -12%; a 3x3 join is also what the
    issue's "about 50k" for the joins amounts to), and a residual block as two 3x3 convs
    plus the identity.
    The difference: the two residual blocks whose widths change (decoder 1: 36 -> 32,
    decoder 0: 28 -> 40) need a 1x1 projection on the identity (ResNet), 2,344
    parameters the paper's count may not have (without them: 418,583, +0.14%); the
    rest is the rounding of "418k" and the unfolding's delta_1, eta_1 (2)."""
    genotype = _table7()
    net = SPACE.build_derived(genotype, {}, 1)
    count = count_parameters(net)
    assert count == parameter_count(genotype.arch, 1) == 420_927
    assert abs(count / PAPER_T1_PARAMS - 1) < 0.02
    image = torch.rand(1, 1, 37, 45)  # any size: padded to a multiple of 8 and cropped
    assert net(image).shape == image.shape


def test_table7_widths_follow_the_table():
    """Stem 1 -> 48 -> 48; joins 72 -> 36 (levels 2, 1) and 56 -> 28 (level 0): the
    up-sampled features plus the down-sampling layer's width at that level."""
    genotype = _table7()
    denoiser = genotype.arch["denoisers"][0]
    net = SPACE.build_derived(genotype, {}, 1).denoisers[0]
    assert [m.weight.shape[:2] for m in net.stem if hasattr(m, "weight")] == [(48, 1), (48, 48)]
    joins = [(join.conv.in_channels, join.conv.out_channels) for join in net.joins]
    assert isinstance(net.joins[0], ConcatJoin) and joins == [(56, 28), (72, 36), (72, 36)]
    encoders, decoders = unet_plan(denoiser, "concat")
    assert [block.in_channels for block in decoders] == [28, 36, 36, 32]
    assert [block.sample.out_channels for block in encoders] == [24, 32, 32]


def test_defaults_are_the_papers_and_the_old_choices_are_options():
    options = SPACE.parse_options({})
    assert (options.candidates, options.skip_join, options.stem) == ("paper", "concat", "fixed")
    assert options.fixed_stem_channels() == 48  # Tables 7/8 at the width 64
    assert options.normal_primitives() == ("conv_3x3", "sep_3x3", "dil_3x3", "res_3x3")
    assert options.down_primitives() == ("down_conv_3x3", "down_nearest", "down_area")
    assert set(options.up_primitives()) == {"up_bilinear", "up_nearest", "up_area",
                                            "up_deconv_3x3"}
    extended = SPACE.parse_options({"candidates": "extended"})
    assert extended.all_primitives() == sum(CANDIDATE_SETS["extended"], ())
    mixed = SPACE.parse_options({"candidates": "extended", "down_ops": ["down_area"]})
    assert mixed.down_primitives() == ("down_area",)


def test_unknown_candidate_set_is_one_line_naming_the_key():
    study = {"name": "m", "data": {"patch_size": 32},
             "search_space": {"name": "modnas", "options": {"candidates": "fancy"}}}
    with pytest.raises(StudyError) as error:
        validate(study)
    message = str(error.value)
    assert "\n" not in message and "search_space.options.candidates" in message
    assert "paper, extended" in message


@pytest.mark.parametrize("structure", [("concat", "fixed"), ("add", "searched"),
                                       ("concat", "searched"), ("add", "fixed"),
                                       ("concat1x1", "fixed")])
def test_supernet_and_derived_follow_join_and_stem(structure):
    skip_join, stem = structure
    options = {**SPACE.tiny_options(), "skip_join": skip_join, "stem": stem}
    torch.manual_seed(0)
    supernet = SPACE.build_supernet(options, 1)
    genotype = SPACE.set_one_hot(supernet)
    assert genotype.version == 3
    assert (genotype.arch["skip_join"], genotype.arch["stem"]) == structure
    loaded = Genotype.from_json(genotype.to_json())
    derived = SPACE.build_derived(loaded, options, 1)
    assert count_parameters(derived) == genotype.provenance["params_derived"]
    image = torch.rand(2, 1, 16, 16)
    assert supernet(image).shape == derived(image).shape == image.shape
    joins = [p for name, p in supernet.named_parameters() if ".joins." in name]
    assert bool(joins) == (skip_join != "add")
    kernels = {p.shape[-1] for name, p in derived.named_parameters()
               if ".joins." in name and name.endswith("weight")}
    assert kernels == (set() if skip_join == "add" else {1 if skip_join == "concat1x1" else 3})
    assert all(p in set(supernet.weight_parameters()) for p in joins)


def test_version_1_genotype_keeps_added_skips_and_the_searched_stem():
    """A genotype written before version 2 (no skip_join / stem keys, old op names)
    loads and builds as before: one gated-conv stem, skips added with zero padding."""
    document = json.loads(TABLE7.read_text())
    arch = document["arch"]
    del arch["skip_join"], arch["stem"], arch["share_architecture"]
    document["version"] = 1
    document["primitives"] = list(CANDIDATE_SETS["extended"][0]) + ["res_3x3"] + \
        list(CANDIDATE_SETS["paper"][1]) + list(CANDIDATE_SETS["paper"][2])
    genotype = Genotype.from_dict(document)
    net = SPACE.build_derived(genotype, {}, 1).denoisers[0]
    assert not hasattr(net.joins[0], "conv") and not net.split_downs
    assert isinstance(net.stem, torch.nn.Conv2d)
    assert count_parameters(net) + 2 == parameter_count(genotype.arch, 1)
    document["version"] = 2  # version 2 needs the keys
    with pytest.raises(ValueError, match=r"arch\.skip_join: missing"):
        Genotype.from_dict(document)


def test_split_stride2_conv_equals_the_stride2_conv():
    """With concatenating joins a down op runs at the block's resolution, then resamples;
    for the stride-2 conv that is the same as the strided conv."""
    torch.manual_seed(0)
    strided = OPS["down_conv_3x3"].build(4, 6)
    split = OPS["down_conv_3x3"].split(4, 6)
    split.conv.load_state_dict(strided.state_dict())
    x = torch.randn(2, 4, 10, 14)
    full, low = split(x)
    assert full.shape == (2, 6, 10, 14)
    torch.testing.assert_close(low, strided(x))


@pytest.mark.parametrize("name", ["res_3x3", "down_nearest", "down_area", "up_area"])
def test_new_ops_shapes_and_parameter_counts(name):
    spec = OPS[name]
    scale = {"normal": 1.0, "down": 0.5, "up": 2.0}[spec.role]
    for c_in, c_out in [(6, 6), (6, 4)]:
        op = spec.build(c_in, c_out)
        out = op(torch.randn(1, c_in, 8, 8))
        assert out.shape == (1, c_out, int(8 * scale), int(8 * scale))
        assert count_parameters(op) == spec.parameters(c_in, c_out)


def test_full_width_retrains_the_searched_genotype_at_every_layers_full_width():
    """MoD-NAS Table 1's full-width row on the same genotype (`full_width`, a retraining
    option): Table 7's ops and paths with every searched channel count at 64."""
    genotype = _table7()
    wide = SPACE.build_derived(genotype, {"full_width": True}, 1)
    assert count_parameters(wide) == parameter_count(full_width_arch(genotype.arch), 1) \
        == 1_198_867
    assert count_parameters(SPACE.build_derived(genotype, {}, 1)) == 420_927
    layer = wide.denoisers[0].encoders[0].layers["1"]
    assert max(p.shape[0] for p in layer.parameters()) == 64


def test_table7_with_1x1_joins():
    """`skip_join: concat1x1` reads "a conv without activation halves the channels" as a 1x1
    conv: Table 7's network then has 366,911 parameters (-12% of the paper's 418k; the 3x3
    joins' 420,927 is +0.7%), which is why `concat` (3x3) is the default."""
    document = json.loads(TABLE7.read_text())
    document["arch"]["skip_join"] = "concat1x1"
    genotype = Genotype.from_dict(document)
    assert count_parameters(SPACE.build_derived(genotype, {}, 1)) == \
        parameter_count(genotype.arch, 1) == 366_911
