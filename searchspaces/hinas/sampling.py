"""Single architectures of the HiNAS supernet for random search with weight sharing (RSWS,
journal Table 1 after Li and Talwalkar, UAI 2020; `search.strategy: rsws`).

Drawing. Every architecture of the space is equally likely: each node of each alpha set
takes two distinct inputs (every pair equally likely) and one op per input from the
primitives other than `none`; the width path is drawn uniformly among all legal paths from
the stem (paths counted backwards over `beta_mask`, so a level with more continuations is
drawn more often at the early layers, as a uniform draw of whole paths requires).

Fixing. `fix_architecture` writes exact 0/1 architecture weights into the relaxed supernet
rather than running a second forward: logits 0 on the chosen (edge, op) and route moves,
MASKED_LOGIT elsewhere, so softmax gives exactly 1 and 0 (exp(-1e4) is 0 in float32 and
float64); an edge not chosen puts its 1 on `none`. The supernet's forward then
- runs only the chosen op of each chosen edge (a mixed op skips exactly-zero weights, and a
  cell with a zero weight takes its edge-by-edge form): unchosen ops and edges get no
  gradient at all;
- gives every source exactly one route: the path's move on the path, elsewhere a move that
  does not land on the path's cell; the other routes are multiplied by exactly 0 and their
  projections get zero gradients;
- still runs the cells at the levels off the path, with the chosen cell: the supernet's head
  reads every level of the last layer and its two-back wires read cells off the path, so
  no sub-network of this supernet is the derived path alone. Those cells' ops (the chosen
  ones only) get gradients through those wires.
Cost: one cell run per (layer, level) as in the relaxed supernet, but 2 ops per node
instead of every op of every edge (journal 3 x 4 cells: 8 ops a cell against 14 x 6), and
every route projection; `release_architecture` restores the saved logits.
"""

from __future__ import annotations

import torch

from searchspaces.genotype import Genotype
from searchspaces.hinas.topology import edge_index
from searchspaces.hinas.viterbi import MOVES

NONE = "none"
MASKED_LOGIT = -1e4  # as the supernet's beta mask: exp() underflows to exactly 0
SAME = MOVES.index(0)


class PathSampling:
    """The RSWS hooks of `searchspaces.registry.Supernet` for `HiNASSupernet` (a mixin: it
    uses the supernet's `alphas`, `betas`, `beta_mask`, `options` and `derive`)."""

    _saved: tuple[torch.Tensor, torch.Tensor] | None = None  # logits before the fix

    def sample_architecture(self, generator: torch.Generator) -> Genotype:
        ops = [name for name in self.options.primitives if name != NONE]
        cells = [sample_cell(self.options.num_nodes, ops, generator)
                 for _ in range(self.alphas.shape[0])]
        levels = sample_levels(self.beta_mask, generator)
        with torch.no_grad():
            saved = self.alphas.detach().clone(), self.betas.detach().clone()
            write_one_hot(self, cells, levels)
            genotype = self.derive()  # the canonical genotype of that choice
            self.alphas.copy_(saved[0])
            self.betas.copy_(saved[1])
        return genotype

    def fix_architecture(self, genotype: Genotype) -> None:
        cells, levels = checked_arch(self, genotype)
        if self._saved is None:
            self._saved = self.alphas.detach().clone(), self.betas.detach().clone()
        with torch.no_grad():
            write_one_hot(self, cells, levels)

    def release_architecture(self) -> None:
        if self._saved is None:
            return
        with torch.no_grad():
            self.alphas.copy_(self._saved[0])
            self.betas.copy_(self._saved[1])
        self._saved = None


def sample_cell(num_nodes: int, ops: list[str], generator: torch.Generator) -> list:
    """Node i: two distinct inputs of its i + 2, each with a uniformly drawn op."""
    cell = []
    for node in range(num_nodes):
        inputs = sorted(torch.randperm(node + 2, generator=generator)[:2].tolist())
        picks = torch.randint(len(ops), (2,), generator=generator).tolist()
        cell.append([[ops[pick], index] for pick, index in zip(picks, inputs)])
    return cell


def sample_levels(legal: torch.Tensor, generator: torch.Generator) -> list[int]:
    """A width path drawn uniformly among the legal ones from the stem (level 0).
    `legal[l, s, m]`: the source at level s before layer l may move by MOVES[m]."""
    num_layers, num_levels, _ = legal.shape
    allowed = legal.tolist()
    # paths[l][s]: legal continuations through layers l.. from source level s
    paths = [[1] * num_levels for _ in range(num_layers + 1)]
    for layer in reversed(range(num_layers)):
        paths[layer] = [sum(paths[layer + 1][s + move] for m, move in enumerate(MOVES)
                            if allowed[layer][s][m]) for s in range(num_levels)]
    levels, source = [], 0
    for layer in range(num_layers):
        targets = [source + move for m, move in enumerate(MOVES) if allowed[layer][source][m]]
        counts = torch.tensor([paths[layer + 1][t] for t in targets], dtype=torch.float64)
        source = targets[int(torch.multinomial(counts, 1, generator=generator))]
        levels.append(source)
    return levels


def write_one_hot(supernet, cells: list, levels: list[int]) -> None:
    """Logits with exact 0/1 softmax for `cells` (one per alpha set) and the path `levels`
    (every source takes one route: `route_move`)."""
    primitives = list(supernet.options.primitives)
    alphas = torch.full_like(supernet.alphas, MASKED_LOGIT)
    alphas[:, :, primitives.index(NONE)] = 0.0  # an edge not chosen: no connection
    for index, cell in enumerate(cells):
        for node, pairs in enumerate(cell):
            for name, input_index in pairs:
                row = edge_index(node, input_index)
                alphas[index, row] = MASKED_LOGIT
                alphas[index, row, primitives.index(name)] = 0.0
    betas = torch.full_like(supernet.betas, MASKED_LOGIT)
    legal = supernet.beta_mask.tolist()
    previous = 0
    for layer, level in enumerate(levels):
        for source, moves in enumerate(legal[layer]):
            if any(moves):
                betas[layer, source, route_move(source, previous, level, moves)] = 0.0
        previous = level
    supernet.alphas.copy_(alphas)
    supernet.betas.copy_(betas)


def route_move(source: int, previous: int, level: int, moves: list[bool]) -> int:
    """The column of the one route a source takes: the path's move for the path's source;
    any other source keeps its level, or takes a legal move, that does not land on the
    path's cell (a route into it would feed that cell from off the path)."""
    if source == previous:
        return level - source + SAME
    off_path = [m for m, ok in enumerate(moves) if ok and source + MOVES[m] != level]
    return SAME if SAME in off_path else off_path[0]


def checked_arch(supernet, genotype: Genotype) -> tuple[list, list[int]]:
    """(cells, levels) of a genotype this supernet can run; ValueError naming the field."""
    options = supernet.options
    if NONE not in options.primitives:
        raise ValueError("search_space.options.primitives: search.strategy rsws fixes "
                         "architectures by putting unchosen edges on 'none'; add it")
    if tuple(genotype.primitives) != tuple(options.primitives):
        raise ValueError(f"primitives: {list(genotype.primitives)} are not the supernet's "
                         f"{list(options.primitives)}")
    cells, levels = genotype.arch["cells"], [int(level) for level in genotype.arch["levels"]]
    if len(cells) != supernet.alphas.shape[0]:
        raise ValueError(f"arch.cells: {len(cells)} cells for {supernet.alphas.shape[0]} "
                         "alpha sets")
    for index, cell in enumerate(cells):
        if len(cell) != options.num_nodes:
            raise ValueError(f"arch.cells[{index}]: {len(cell)} nodes, not {options.num_nodes}")
    legal, previous = supernet.beta_mask.tolist(), 0
    if len(levels) != len(legal):
        raise ValueError(f"arch.levels: {len(levels)} layers, not {len(legal)}")
    for layer, level in enumerate(levels):
        move = level - previous
        if move not in MOVES or not legal[layer][previous][MOVES.index(move)]:
            raise ValueError(f"arch.levels[{layer}]: no move from level {previous} to {level}")
        previous = level
    return cells, levels
