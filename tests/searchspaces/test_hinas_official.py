"""HiNAS `variant: code` against the official code (hkzhang91/HiNAS), and each network
difference against a hand computation (searchspaces/hinas/options.py lists them).

Provenance of the official parameter counts: the official repository, run on CPU
(torch 2, yacs; `.cuda()` of the loss windows made a no-op), counting
`sum(p.numel() for p in model.parameters())`:

- `Dn_compnet` (one_stage_nas/modeling/dn_compnet.py) built from
  configs/dn/BSD500_3c4n/03_train_CR_R0/train_s30.yaml (FILTER_MULTIPLIER 20, 3 layers,
  4 blocks, NO_DEF_L, Leaky, USE_ASPP False, USE_RES True, TIE_CELL False; WS_FACTORS
  [1, 1.5, 2] and IN_CHANNEL 1 from one_stage_nas/config/defaults.py and the yaml), with a
  `model_best.geno` of ([CELL] * 3, path) written where Dn_compnet looks for it, CELL the
  official spelling of `CELL` below. By width path: [1, 2, 2] 424,669; [0, 1, 2] 345,349
  (endpoint: cell 0); [1, 1, 1] 330,309; [0, 0, 0] 226,969. Every count includes the
  endpoint reduction (46,080), which Dn_compnet builds even when a cell is the endpoint.
- `Dn_supernet` (dn_supernet.py) from configs/dn/BSD500_3c4n/03_search_CR_R0.yaml (L=3,
  N=4, W=10, AFFINE False, SEARCH_ON True, so decoders.Dn_AutoDecoder): 1,475,669, of which
  312 are the architecture parameters (arch_alphas 3 x 14 x 7, arch_betas 6 x 3) and
  1,475,357 the weights.

With the parameters and BatchNorm buffers of `variant: code` copied into the official
networks by name (same run, not repeated here: the official code is not part of the
project), the outputs agreed: Dn_compnet bit for bit on every path above and [0, 0, 1], in
eval and with batch statistics; Dn_supernet (random alphas and betas) within 3e-6 on its
sigmoid output.

Before `variant: code` existed the project's counts were 402,797; 323,477; 290,517; 169,257 and
1,438,292: what `variant: paper` still builds.
"""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from orchestrator.study.reading import StudyError, load_study
from searchspaces.genotype import Genotype
from searchspaces.hinas.derived import endpoint_layer
from searchspaces.hinas.operations import JOURNAL_PRIMITIVES
from searchspaces.registry import get_space

SPACE = get_space("hinas")
CELL = [[["conv_3x3", 0], ["sep_3x3", 1]], [["dil_3x3", 1], ["skip", 2]],
        [["sep_5x5", 0], ["dil_5x5", 3]], [["conv_3x3", 2], ["sep_3x3", 4]]]
OFFICIAL_DERIVED = {(1, 2, 2): 424_669, (0, 1, 2): 345_349, (1, 1, 1): 330_309,
                    (0, 0, 0): 226_969}
PAPER_DERIVED = {(1, 2, 2): 402_797, (0, 1, 2): 323_477, (1, 1, 1): 290_517,
                 (0, 0, 0): 169_257}
OFFICIAL_SUPERNET, OFFICIAL_SUPERNET_WEIGHTS, PAPER_SUPERNET = 1_475_669, 1_475_357, 1_438_292
TINY = {"num_layers": 3, "num_nodes": 1, "width": 2, "stem_channels": 4}


def count(module: torch.nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def genotype(levels, cell=CELL) -> Genotype:
    arch = {"cells": [cell] * len(levels), "levels": list(levels), "num_nodes": len(cell),
            "layerwise": True, "residual": True}
    return Genotype("hinas", JOURNAL_PRIMITIVES, arch)


# --- parameter counts (official code) ----------------------------------------------------------
@pytest.mark.parametrize("variant, expected", [("code", OFFICIAL_DERIVED),
                                               ("paper", PAPER_DERIVED)])
def test_derived_parameter_counts(variant, expected):
    for levels, params in expected.items():
        net = SPACE.build_derived(genotype(levels), {"width": 20, "variant": variant}, 1)
        assert count(net) == params, levels


def test_supernet_parameter_counts():
    torch.manual_seed(0)
    code = SPACE.build_supernet({}, 1)  # the defaults: L=3, N=4, W=10, variant code
    assert sum(p.numel() for p in code.weight_parameters()) == OFFICIAL_SUPERNET_WEIGHTS
    assert abs(count(code) - OFFICIAL_SUPERNET) <= 0.001 * OFFICIAL_SUPERNET  # 9 beta logits
    assert count(SPACE.build_supernet({"variant": "paper"}, 1)) == PAPER_SUPERNET


# --- options ------------------------------------------------------------------------------
def test_unset_options_follow_the_variant():
    options = SPACE.parse_options({"variant": "paper", "decoder": "code"})
    network = options.network()
    assert network.decoder == "code" and network.projection == "paper"
    assert set(vars(SPACE.parse_options({}).network()).values()) == {"code"}
    dumped = options.model_dump(mode="json")  # what a retrain re-validates
    assert dumped["projection"] is None  # so a retrain's `variant` still decides it
    assert SPACE.parse_options({**dumped, "variant": "code"}).network().projection == "code"


@pytest.mark.parametrize("key", ["variant", "decoder", "two_back"])
def test_unknown_variant_names_the_key(key, tmp_path):
    study = tmp_path / "study.yaml"
    study.write_text(f"name: t\nsearch_space: {{name: hinas, options: {{{key}: journal}}}}\n")
    with pytest.raises(StudyError) as caught:
        load_study(study)
    message = str(caught.value)
    assert f"search_space.options.{key}" in message and "\n" not in message


# --- hand computations --------------------------------------------------------------------
def act(x: torch.Tensor) -> torch.Tensor:
    return F.leaky_relu(x, 0.2)


def bn(x: torch.Tensor, norm: torch.nn.BatchNorm2d) -> torch.Tensor:
    """Training-mode BatchNorm: batch statistics, the module's affine parameters if any."""
    return F.batch_norm(x, None, None, norm.weight, norm.bias, True, 0.0, norm.eps)


def separable(x: torch.Tensor, block, rate: int = 1) -> torch.Tensor:
    hidden = F.conv2d(x, block.depthwise.weight, padding=rate, dilation=rate, groups=x.shape[1])
    hidden = act(bn(hidden, block.depthwise_norm))
    return act(bn(F.conv2d(hidden, block.pointwise.weight), block.pointwise_norm))


def conv_bn_act(x: torch.Tensor, layer) -> torch.Tensor:
    return act(bn(F.conv2d(x, layer.conv.weight), layer.norm))


class Recorder:
    """Inputs and outputs of the modules it watches, by name (until `close`)."""

    def __init__(self, modules: dict[str, torch.nn.Module]) -> None:
        self.inputs: dict[str, tuple] = {}
        self.outputs: dict[str, object] = {}
        self.handles = [m.register_forward_hook(self._hook(name)) for name, m in modules.items()]

    def _hook(self, name):
        def record(module, args, output):
            self.inputs[name], self.outputs[name] = args, output
        return record

    def close(self) -> None:
        for handle in self.handles:
            handle.remove()


def tiny_supernet(**options):
    torch.manual_seed(0)
    supernet = SPACE.build_supernet({**TINY, **options}, 1)
    with torch.no_grad():
        supernet.alphas.normal_()
        supernet.betas.normal_()
    return supernet


@pytest.mark.parametrize("residual", [True, False])
def test_code_supernet_output_is_sigmoid_of_image_minus_head(residual):
    supernet = tiny_supernet(residual=residual)
    recorder = Recorder({"head": supernet.head})
    image = torch.rand(2, 1, 8, 8)
    out = supernet(image)
    r = recorder.outputs["head"]
    torch.testing.assert_close(out, torch.sigmoid(image - r if residual else r))


def test_code_supernet_head_is_one_aspp_per_level():
    supernet = tiny_supernet()
    head = supernet.head
    recorder = Recorder({"head": head})
    image = torch.rand(2, 1, 20, 20)  # wider than the ASPP's rate of 16
    supernet(image)
    (features,) = recorder.inputs["head"]
    assert [f.shape[1] for f in features] == [2, 3, 4]  # N * W at levels 1, 1.5, 2
    branches = []
    for x, aspp in zip(features, head.aspps, strict=True):
        joined = torch.cat([separable(x, aspp.atrous, rate=16), conv_bn_act(x, aspp.pointwise)], 1)
        branches.append(conv_bn_act(joined, aspp.fuse))  # (B, N * W, H, W) each level
    mixed = act(bn(F.conv2d(torch.cat(branches, 1), head.mix.conv.weight, padding=1),
                   head.mix.norm))
    hand = F.conv2d(mixed, head.out.weight, head.out.bias, padding=1)
    torch.testing.assert_close(recorder.outputs["head"], hand)


@pytest.mark.parametrize("variant", ["code", "paper"])
def test_stem_repeats_the_activation_in_the_code(variant):
    supernet = tiny_supernet(variant=variant)
    stem = supernet.stem
    image = torch.rand(2, 1, 6, 6)
    first = act(bn(F.conv2d(image, stem.first.conv.weight, padding=1), stem.first.norm))
    second_in = act(first) if variant == "code" else first
    out = bn(F.conv2d(second_in, stem.second.conv.weight, padding=1), stem.second.norm)
    got_first, got = stem(image)
    torch.testing.assert_close(got_first, first)
    torch.testing.assert_close(got, out)
    assert got.shape[1] == (2 if variant == "code" else 4)  # code: a level-0 cell output


def test_code_two_back_is_the_mixture_one_layer_back():
    supernet = tiny_supernet()
    cells = {key: supernet.cells[key] for key in supernet.cells}
    recorder = Recorder({**cells, "stem": supernet.stem})
    supernet(torch.rand(2, 1, 8, 8))
    recorder.close()
    betas = supernet.beta_probs().detach()

    def mixture(layer, target):  # Eq. 5's input of cell (layer, target), by hand
        terms = []
        for source in supernet.incoming(layer, target):
            h = recorder.outputs["stem"][1] if layer == 0 else recorder.outputs[
                f"{layer - 1}_{source}"]
            route = supernet.routes[f"{layer}_{source}_{target}"]
            terms.append(betas[layer, source, target - source + 1] * route(h))
        return sum(terms)

    def inputs(layer, target):  # (two_back, previous) the network gave the cell
        return recorder.inputs[f"{layer}_{target}"][:2]

    with torch.no_grad():
        reduced = supernet.reduce(recorder.outputs["stem"][0])
        torch.testing.assert_close(inputs(0, 0)[0], reduced)
        torch.testing.assert_close(inputs(0, 1)[0], supernet.widen[0](reduced))
        torch.testing.assert_close(inputs(1, 2)[0], supernet.widen[1](mixture(0, 1)))
        for layer, target in [(1, 0), (1, 1), (2, 0), (2, 1), (2, 2)]:
            torch.testing.assert_close(inputs(layer, target)[0], mixture(layer - 1, target))
            torch.testing.assert_close(inputs(layer, target)[1], mixture(layer, target))


@pytest.mark.parametrize("variant", ["code", "paper"])
def test_derived_projection_activates_first_in_the_code(variant):
    net = SPACE.build_derived(genotype([0, 1, 1], CELL[:1]), {**TINY, "variant": variant}, 1)
    recorder = Recorder({"previous": net.previous[2]})
    net(torch.rand(2, 1, 6, 6))
    (x,) = recorder.inputs["previous"]
    assert (x < 0).any()  # a cell output: the activation changes it
    projection = net.previous[2]
    source = act(x) if variant == "code" else x
    hand = bn(F.conv2d(source, projection.conv.weight), projection.norm)
    torch.testing.assert_close(recorder.outputs["previous"], hand)


@pytest.mark.parametrize("variant", ["code", "paper"])
def test_derived_two_back_of_layer_zero(variant):
    net = SPACE.build_derived(genotype([0, 1, 1], CELL[:1]), {**TINY, "variant": variant}, 1)
    recorder = Recorder({"stem": net.stem, "back0": net.two_back[0], "back1": net.two_back[1]})
    net(torch.rand(2, 1, 6, 6))
    first, stem = recorder.outputs["stem"]
    assert recorder.inputs["back0"][0] is (first if variant == "code" else stem)
    assert recorder.inputs["back1"][0] is stem


@pytest.mark.parametrize("levels, endpoint", [((0, 1, 2), 0), ((1, 2, 2), None),
                                              ((0, 0, 0), None), ((1, 1, 1), None),
                                              ((0, 0, 1), 1), ((1, 0, 0), None)])
def test_endpoint_is_the_last_level_zero_cell_before_the_last(levels, endpoint):
    assert endpoint_layer(list(levels)) == endpoint


@pytest.mark.parametrize("levels", [(0, 1, 2), (1, 2, 2)])
def test_code_decoder_by_hand(levels):
    torch.manual_seed(0)
    net = SPACE.build_derived(genotype(levels, CELL[:1]), TINY, 1)
    recorder = Recorder({"stem": net.stem, "cell0": net.cells[0], "cell2": net.cells[2]})
    image = torch.rand(2, 1, 6, 6)
    out = net(image)
    head, stem = net.head, recorder.outputs["stem"][1]
    if levels[0] == 0:
        endpoint = recorder.outputs["cell0"]
    else:  # 3x3 conv + BN (not affine) of the stem output
        endpoint = bn(F.conv2d(stem, net.reduce.conv.weight, padding=1), net.reduce.norm)
    joined = torch.cat([conv_bn_act(endpoint, head.endpoint),
                        conv_bn_act(act(recorder.outputs["cell2"]), head.last)], 1)
    assert joined.shape[1] == 128 + 48
    blocks = separable(separable(joined, head.blocks[0]), head.blocks[1])
    residual = F.conv2d(blocks, head.out.weight, head.out.bias, padding=1)
    torch.testing.assert_close(out, image - residual)


# --- cell sharing off: Auto-DeepLab Eq. 6 -------------------------------------------------
@pytest.mark.parametrize("variant", ["code", "paper"])
def test_without_cell_sharing_each_path_runs_its_own_cell(variant):
    """h_l^t = sum_k beta_k^t C_l^k(f_{l-1}^k, f_{l-2}^t) (journal Eq. 6), at the last layer."""
    supernet = tiny_supernet(num_layers=2, cell_sharing=False, variant=variant)
    last = 1
    keys = [key for key in supernet.routes if key.startswith(f"{last}_")]
    recorder = Recorder({"head": supernet.head,
                         **{f"route {key}": supernet.routes[key] for key in keys},
                         **{f"cell {key}": supernet.cells[key] for key in keys}})
    supernet(torch.rand(2, 1, 8, 8))
    recorder.close()
    (outputs,) = recorder.inputs["head"]  # the last layer's h^t, by level
    betas, weights = supernet.beta_probs().detach(), supernet.alpha_weights()[last].detach()
    with torch.no_grad():
        for target in supernet.levels(last):
            terms = []
            for source in supernet.incoming(last, target):
                key = f"{last}_{source}_{target}"
                (h,) = recorder.inputs[f"route {key}"]  # h_{l-1}^source
                two_back = recorder.inputs[f"cell {key}"][0]  # f_{l-2}^target
                cell = supernet.cells[key]
                path = cell(two_back, supernet.routes[key](h), weights)
                terms.append(betas[last, source, target - source + 1] * path)
            torch.testing.assert_close(outputs[target], sum(terms))
