"""RSWS hooks of the HiNAS supernet (searchspaces/hinas/sampling.py): uniform draws, exact
0/1 architecture weights, gradients only where the drawn architecture reaches, restore."""

from __future__ import annotations

import itertools
from collections import Counter

import pytest
import torch

from searchspaces.hinas.sampling import sample_levels
from searchspaces.hinas.viterbi import MOVES
from searchspaces.registry import get_space

SPACE = get_space("hinas")
FOUR_BY_THREE = {"num_layers": 4, "num_nodes": 2, "width": 2, "stem_channels": 4,
                 "width_multipliers": [1.0, 2.0, 4.0]}


def _supernet(**overrides):
    torch.manual_seed(0)
    return SPACE.build_supernet({**SPACE.tiny_options(), **overrides}, 1)


def _legal_paths(legal):
    paths = []
    for moves in itertools.product(MOVES, repeat=legal.shape[0]):
        level, path = 0, []
        for layer, move in enumerate(moves):
            if not legal[layer, level, MOVES.index(move)]:
                break
            level += move
            path.append(level)
        else:
            paths.append(tuple(path))
    return paths


def test_width_paths_are_drawn_uniformly():
    legal = _supernet(**FOUR_BY_THREE).beta_mask
    paths = _legal_paths(legal)
    generator = torch.Generator().manual_seed(0)
    draws = 300 * len(paths)
    counts = Counter(tuple(sample_levels(legal, generator)) for _ in range(draws))
    assert set(counts) == set(paths)  # every legal path, nothing else
    # a step-by-step uniform walk gives (0,0,0,0) 1/36 and (1,2,2,2) 1/8 of the draws
    assert max(counts.values()) / min(counts.values()) < 1.5


def test_sampled_genotypes_are_valid_and_fix_to_themselves():
    supernet = _supernet(**FOUR_BY_THREE)
    alphas, betas = supernet.alphas.detach().clone(), supernet.betas.detach().clone()
    generator = torch.Generator().manual_seed(1)
    for _ in range(20):
        genotype = supernet.sample_architecture(generator)
        SPACE.validate_arch(genotype)
        assert torch.equal(supernet.alphas, alphas)  # drawing leaves the logits alone
        supernet.fix_architecture(genotype)
        assert supernet.derive().canonical() == genotype.canonical()
        weights = [supernet.alpha_weights(), supernet.beta_probs()]
        assert all(bool(((w == 0) | (w == 1)).all()) for w in weights)  # exactly 0 / 1
        supernet.release_architecture()
        assert torch.equal(supernet.alphas, alphas) and torch.equal(supernet.betas, betas)


@pytest.mark.parametrize("sharing", [True, False])
def test_a_sampled_step_reaches_only_the_drawn_ops_and_routes(sharing):
    supernet = _supernet(**FOUR_BY_THREE, cell_sharing=sharing)
    genotype = supernet.sample_architecture(torch.Generator().manual_seed(3))
    supernet.fix_architecture(genotype)
    supernet(torch.rand(2, 1, 8, 8)).square().mean().backward()
    cells, levels = genotype.arch["cells"], genotype.arch["levels"]
    reached = unreached = 0
    for key, cell in supernet.cells.items():
        layer = int(key.split("_")[0])
        nodes = cells[supernet.alpha_set(layer)]
        chosen = {(sum(2 + n for n in range(node)) + index, name)
                  for node, pairs in enumerate(nodes) for name, index in pairs}
        on_path = key.split("_")[-1] == str(levels[layer]) and (
            sharing or key.split("_")[1] == str(levels[layer - 1] if layer else 0))
        for row, edge in enumerate(cell.edges):
            for name, op in edge.ops.items():
                grads = [p.grad for p in op.parameters()]
                touched = any(g is not None and bool(g.abs().sum() > 0) for g in grads)
                if (row, name) not in chosen:
                    assert not touched, (key, row, name)
                    unreached += bool(grads)
                else:  # may be 0 on an input that is exactly 0 (a two-back mixture)
                    reached += on_path and touched
    assert reached and unreached
    # a route carries weight 1 or 0; weight 0: no gradient; into a path cell: the path's only
    probs, path = supernet.beta_probs().detach(), list(zip([0, *levels], levels))
    for key, route in supernet.routes.items():
        layer, source, target = map(int, key.split("_"))
        grad = route[0].weight.grad
        moved = grad is not None and bool(grad.abs().sum() > 0)
        weight = float(probs[layer, source, target - source + 1])
        if weight == 0:
            assert not moved, key
        if target == levels[layer]:
            assert weight == float((source, target) == path[layer]), key
        if (source, target) == path[layer]:
            assert moved, key


def test_release_without_fix_does_nothing_and_a_wrong_genotype_is_named():
    supernet = _supernet()
    supernet.release_architecture()
    genotype = supernet.sample_architecture(torch.Generator().manual_seed(0))
    other = _supernet(num_layers=3)
    with pytest.raises(ValueError, match="arch.cells"):
        other.fix_architecture(genotype)
    without_none = _supernet(primitives=["conv_3x3", "skip"])
    with pytest.raises(ValueError, match="'none'"):
        without_none.fix_architecture(without_none.sample_architecture(torch.Generator()))


def test_spaces_without_the_hooks_say_so():
    space = get_space("superkernel")
    supernet = space.build_supernet(space.tiny_options(), 1)
    with pytest.raises(NotImplementedError, match="rsws"):
        supernet.sample_architecture(torch.Generator())
