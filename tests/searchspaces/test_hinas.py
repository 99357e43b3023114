"""HiNAS-specific behaviour: Viterbi widths, cell sharing run counts, LWAS,
residual learning, derivation rules, options and genotype validation."""

from __future__ import annotations

import itertools
import json
import math

import pytest
import torch
from pydantic import ValidationError

from searchspaces.genotype import Genotype, GenotypeError
from searchspaces.hinas.cells import MixedOp, SearchCell, derive_cell, num_edges
from searchspaces.hinas.operations import JOURNAL_PRIMITIVES, OPS
from searchspaces.hinas.viterbi import MOVES, viterbi
from searchspaces.registry import get_space

SPACE = get_space("hinas")
# Small enough for sub-second tests, but with 3 layers x 3 levels.
THREE_BY_THREE = {"num_layers": 3, "num_nodes": 1, "width": 2, "stem_channels": 4}

# A literal genotype file (the format documented in searchspaces/hinas/space.py).
LITERAL_GENOTYPE = """{
  "format": "nas-denoise-genotype", "version": 1, "space": "hinas",
  "primitives": ["conv_3x3", "sep_3x3", "sep_5x5", "dil_3x3", "dil_5x5", "skip", "none"],
  "arch": {
    "cells": [
      [[["conv_3x3", 0], ["sep_3x3", 1]], [["dil_3x3", 1], ["skip", 2]]],
      [[["sep_5x5", 0], ["dil_5x5", 1]], [["conv_3x3", 0], ["sep_3x3", 2]]]
    ],
    "levels": [1, 2],
    "num_nodes": 2,
    "layerwise": true,
    "residual": true
  },
  "provenance": {"trial": "t1", "epoch": 61, "score": 1.12}
}"""


def _supernet(**overrides):
    torch.manual_seed(0)
    return SPACE.build_supernet({**SPACE.tiny_options(), **overrides}, 1)


# --- Viterbi -------------------------------------------------------------------------
def _greedy(transitions):
    level, path = 0, []
    for rows in transitions:
        level += MOVES[max(range(3), key=rows[level].__getitem__)]
        path.append(level)
    return path


def _brute_force(transitions):
    best, best_path = -math.inf, None
    for moves in itertools.product(MOVES, repeat=len(transitions)):
        level, score, path = 0, 0.0, []
        for rows, move in zip(transitions, moves):
            prob = rows[level][move + 1]
            level += move
            if prob <= 0 or not 0 <= level < len(rows):
                break
            score += math.log(prob)
            path.append(level)
        else:
            if score > best:
                best, best_path = score, path
    return best_path


# rows: [narrower, same, wider] per source level
HAND_BUILT = [
    [[0.0, 0.45, 0.55], [0.0, 0.0, 0.0], [0.0, 0.0, 0.0]],  # from the stem (level 0)
    [[0.0, 0.99, 0.01], [0.34, 0.33, 0.33], [0.0, 0.0, 0.0]],
    [[0.0, 0.9, 0.1], [0.4, 0.3, 0.3], [0.5, 0.5, 0.0]],
]


def test_viterbi_finds_the_known_path_where_greedy_does_not():
    # greedy goes wider first (0.55) and then faces near-uniform rows; the best
    # path stays at level 0: 0.45 * 0.99 * 0.9 = 0.40 > 0.55 * 0.34 * ... <= 0.19
    assert viterbi(HAND_BUILT) == [0, 0, 0]
    assert _greedy(HAND_BUILT) == [1, 0, 0]


def test_viterbi_matches_brute_force_on_random_betas():
    generator = torch.Generator().manual_seed(3)
    supernet = _supernet(**{**THREE_BY_THREE, "num_layers": 5})
    for _ in range(5):
        with torch.no_grad():
            supernet.betas.copy_(torch.randn(supernet.betas.shape, generator=generator) * 2)
        transitions = supernet.beta_probs().tolist()
        assert viterbi(transitions) == _brute_force(transitions)


def test_viterbi_rejects_dead_ends():
    with pytest.raises(ValueError, match="layer 1"):
        viterbi([[[0.0, 1.0, 0.0], [0, 0, 0]], [[0.0, 0.0, 0.0], [0, 0, 0]]])


# --- cell sharing ------------------------------------------------------------------
@pytest.mark.parametrize("sharing, runs", [(True, 8), (False, 14)])
def test_cell_runs_with_and_without_sharing(sharing, runs):
    supernet = _supernet(**THREE_BY_THREE, cell_sharing=sharing)
    supernet(torch.rand(1, 1, 8, 8))
    assert supernet.cell_calls() == runs
    assert all(cell.calls == 1 for cell in supernet.cells.values())
    per_target = {}
    for key, cell in supernet.cells.items():
        layer, target = key.split("_")[0], key.split("_")[-1]
        per_target[layer, target] = per_target.get((layer, target), 0) + cell.calls
    expected_paths = {
        (str(layer), str(t)): len(supernet.incoming(layer, t))
        for layer in range(3)
        for t in supernet.levels(layer)
    }
    assert len(per_target) == 8
    assert per_target == (expected_paths if not sharing else dict.fromkeys(per_target, 1))
    supernet.reset_cell_calls()
    assert supernet.cell_calls() == 0


def test_levels_and_two_back_sources():
    supernet = _supernet(**THREE_BY_THREE)
    assert [list(supernet.levels(layer)) for layer in range(3)] == [[0, 1], [0, 1, 2], [0, 1, 2]]
    assert supernet.two_back_source(0, 1) == (-1, 0)  # the stem
    assert supernet.two_back_source(1, 2) == (-1, 0)
    assert supernet.two_back_source(2, 1) == (0, 1)
    assert supernet.two_back_source(2, 2) == (0, 1)  # level 2 did not exist at layer 0


def test_beta_masks_impossible_moves():
    probs = _supernet(**THREE_BY_THREE).beta_probs()  # (L, S, 3)
    assert probs[0].tolist() == [[0.0, 0.5, 0.5], [0.0, 0.0, 0.0], [0.0, 0.0, 0.0]]
    assert probs[2, 0, 0] == 0 and probs[2, 2, 2] == 0
    assert torch.allclose(probs[2, 1], torch.full((3,), 1 / 3))


# --- LWAS, residual, entropy -------------------------------------------------------
@pytest.mark.parametrize("layerwise, sets", [(True, 3), (False, 1)])
def test_layerwise_alphas_change_the_number_of_alpha_sets(layerwise, sets):
    supernet = _supernet(**THREE_BY_THREE, layerwise_alphas=layerwise)
    assert supernet.alphas.shape == (sets, num_edges(1), len(JOURNAL_PRIMITIVES))
    genotype = supernet.derive()
    assert len(genotype.arch["cells"]) == sets
    assert genotype.arch["layerwise"] is layerwise


def _zero_head(net):
    with torch.no_grad():
        for param in net.head.parameters():
            param.zero_()


@pytest.mark.parametrize("variant", ["code", "paper"])
@pytest.mark.parametrize("residual", [True, False])
def test_residual_learning(residual, variant):
    supernet = _supernet(residual=residual, variant=variant)
    genotype = SPACE.set_one_hot(supernet)
    derived = SPACE.build_derived(genotype, {**SPACE.tiny_options(), "variant": variant}, 1)
    image = torch.rand(2, 1, 8, 8)
    expected = image if residual else torch.zeros_like(image)
    for net in (supernet, derived):
        _zero_head(net)
        sigmoid = variant == "code" and net is supernet  # the code's search output
        assert torch.equal(net(image), torch.sigmoid(expected) if sigmoid else expected)


def test_entropy_at_uniform_init():
    supernet = _supernet(**THREE_BY_THREE)
    alpha_probs, beta_probs = supernet.arch_distributions()
    alpha_entropy = -(alpha_probs * alpha_probs.log()).sum(-1)
    assert torch.allclose(alpha_entropy, torch.full_like(alpha_entropy, math.log(7)))
    legal = (beta_probs > 0).sum(-1).float()
    beta_entropy = -(beta_probs * beta_probs.clamp_min(1e-12).log()).sum(-1)
    assert torch.allclose(beta_entropy, legal.log())


# --- derivation ----------------------------------------------------------------------
@pytest.mark.parametrize("seed", range(2))
def test_derive_keeps_two_inputs_per_node_and_never_none(seed):
    supernet = _supernet(num_layers=1, num_nodes=4, width=2, stem_channels=4)
    with torch.no_grad():
        supernet.alphas.normal_(generator=torch.Generator().manual_seed(seed))
        supernet.alphas[..., JOURNAL_PRIMITIVES.index("none")] = 50.0  # none dominates
    genotype = supernet.derive()
    for cell in genotype.arch["cells"]:
        assert len(cell) == 4
        for node, pairs in enumerate(cell):
            assert len(pairs) == 2
            inputs = [index for _, index in pairs]
            assert inputs == sorted(set(inputs)) and inputs[-1] < node + 2
            assert all(op != "none" for op, _ in pairs)
    SPACE.validate_arch(genotype)


def test_derive_cell_picks_strongest_edges():
    primitives = JOURNAL_PRIMITIVES
    weights = torch.full((num_edges(2), len(primitives)), 0.01)
    weights[0, 0] = 0.9  # node 0 <- input 0 by conv_3x3
    weights[1, 5] = 0.8  # node 0 <- input 1 by skip
    weights[3, 3] = 0.7  # node 1 <- input 1 by dil_3x3
    weights[4, 2] = 0.6  # node 1 <- node 0 by sep_5x5
    weights[2, 6] = 0.99  # node 1 <- input 0 by none: ignored
    assert derive_cell(weights, primitives, 2) == [
        [["conv_3x3", 0], ["skip", 1]],
        [["dil_3x3", 1], ["sep_5x5", 2]],
    ]


def test_mixed_op_skips_zero_weights():
    mixed = MixedOp(2, JOURNAL_PRIMITIVES, "leaky_relu")
    calls = []
    for name, op in mixed.ops.items():
        op.register_forward_hook(lambda *_, name=name: calls.append(name))
    weights = torch.zeros(len(JOURNAL_PRIMITIVES))
    weights[1] = 1.0
    mixed(torch.rand(1, 2, 4, 4), weights, (weights != 0).tolist())
    assert calls == ["sep_3x3"]


def test_search_cell_output_is_concat_of_nodes():
    cell = SearchCell(3, 4, JOURNAL_PRIMITIVES, "relu")
    x = torch.rand(2, 3, 5, 5)
    weights = torch.softmax(torch.zeros(num_edges(4), 7), -1)
    assert cell(x, x, weights).shape == (2, 12, 5, 5)


# --- derived network -----------------------------------------------------------------
def test_literal_genotype_builds_and_runs():
    genotype = Genotype.from_json(LITERAL_GENOTYPE)
    assert genotype.provenance["epoch"] == 61
    net = SPACE.build_derived(genotype, {"width": 4, "stem_channels": 8}, 3)
    image = torch.rand(1, 3, 12, 12)
    assert net(image).shape == image.shape
    assert all(not hasattr(m, "affine") or m.affine  # but the official endpoint reduction
               for name, m in net.named_modules() if not name.startswith("reduce"))


def test_derived_parameter_count_grows_with_width():
    genotype = Genotype.from_json(LITERAL_GENOTYPE)

    def count(width):
        net = SPACE.build_derived(genotype, {"width": width, "stem_channels": 8}, 1)
        return sum(p.numel() for p in net.parameters())

    assert count(4) < count(8) < count(20)


def test_derived_rejects_levels_beyond_the_options():
    genotype = Genotype.from_json(LITERAL_GENOTYPE)
    with pytest.raises(ValueError, match="levels"):
        SPACE.build_derived(genotype, {"width_multipliers": [1.0, 2.0]}, 1)


# --- genotype validation -------------------------------------------------------------
def _set(path, value):
    def apply(document):
        target = document
        for key in path[:-1]:
            target = target[key]
        target[path[-1]] = value

    return apply


BAD_GENOTYPES = {
    "unknown op": (_set(["arch", "cells", 0, 1, 0, 0], "conv_7x7"), "unknown op"),
    "none op": (_set(["arch", "cells", 0, 1, 0, 0], "none"), "unknown op"),
    "input index out of range": (_set(["arch", "cells", 1, 0, 1, 1], 2), "out of range"),
    "negative input index": (_set(["arch", "cells", 1, 0, 0, 1], -1), "input index"),
    "inputs not ascending": (
        _set(["arch", "cells", 0, 0], [["skip", 1], ["conv_3x3", 0]]),
        "ascending",
    ),
    "three pairs in a node": (lambda d: d["arch"]["cells"][0][0].append(["skip", 1]), "two"),
    "level jumps by two": (_set(["arch", "levels"], [0, 2]), "arch.levels[1]"),
    "first level jumps": (_set(["arch", "levels"], [2, 2]), "arch.levels[0]"),
    "negative level": (_set(["arch", "levels"], [0, -1]), "arch.levels[1]"),
    "levels not a list": (_set(["arch", "levels"], 1), "arch.levels"),
    "too few cells": (_set(["arch", "levels"], [0, 1, 1]), "arch.cells"),
    "wrong node count": (_set(["arch", "num_nodes"], 3), "arch.cells[0]"),
    "layerwise not bool": (_set(["arch", "layerwise"], 1), "arch.layerwise"),
    "residual missing": (lambda d: d["arch"].pop("residual"), "arch.residual"),
    "unknown primitive": (_set(["primitives"], ["conv_3x3", "conv_9x9"]), "primitives"),
    "op not in primitives": (_set(["primitives"], ["sep_3x3", "skip"]), "unknown op"),
}


@pytest.mark.parametrize("case", sorted(BAD_GENOTYPES))
def test_invalid_hinas_genotypes_name_the_field(case):
    corrupt, message = BAD_GENOTYPES[case]
    document = json.loads(LITERAL_GENOTYPE)
    corrupt(document)
    with pytest.raises(GenotypeError, match=message.replace("[", r"\[").replace("]", r"\]")):
        Genotype.from_json(json.dumps(document))


# --- options -------------------------------------------------------------------------
@pytest.mark.parametrize(
    "options, message",
    [
        ({"num_layers": 0}, "num_layers must be >= 1"),
        ({"num_nodes": 0}, "num_nodes must be >= 1"),
        ({"width": 0}, "width must be >= 1"),
        ({"width_multipliers": [1.0, 1.0]}, "strictly ascending"),
        ({"width_multipliers": [-1.0, 1.0]}, "positive"),
        ({"width_multipliers": []}, "must not be empty"),
        ({"width": 1, "width_multipliers": [0.5, 1.0]}, "gives 0 channels"),
        ({"primitives": ["conv_3x3", "deform_3x3"]}, "unknown primitive 'deform_3x3'"),
        ({"primitives": ["none"]}, "other than 'none'"),
        ({"primitives": ["skip", "skip"]}, "unique"),
        ({"activation": "gelu"}, "activation"),
        ({"num_layer": 3}, "num_layer"),
    ],
)
def test_options_validation(options, message):
    with pytest.raises(ValidationError, match=message):
        SPACE.parse_options(options)


def test_options_defaults_match_the_journal():
    options = SPACE.parse_options({})
    assert (options.num_layers, options.num_nodes, options.width) == (3, 4, 10)
    assert options.width_multipliers == (1.0, 1.5, 2.0)
    assert options.primitives == JOURNAL_PRIMITIVES and set(JOURNAL_PRIMITIVES) <= set(OPS)


def test_subset_of_primitives_and_relu():
    supernet = _supernet(primitives=["conv_3x3", "skip"], activation="relu")
    image = torch.rand(1, 1, 8, 8)
    assert supernet(image).shape == image.shape
    expected = SPACE.set_one_hot(supernet)
    assert supernet.derive().canonical() == expected.canonical()
