"""HiNAS as pictures: alpha per layer (edges x operations) and beta (moves of
each source cell) as tables; a genotype as its width path over the layers plus one DAG
per derived cell, every edge labelled with its operation (journal Fig. 2)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch

from searchspaces.genotype import Genotype
from searchspaces.hinas.supernet import SPACE_NAME
from searchspaces.views import (
    Arrow,
    Box,
    Diagram,
    Panel,
    SpaceViews,
    WeightTable,
    register_views,
    table,
)

if TYPE_CHECKING:
    from searchspaces.hinas.supernet import HiNASSupernet

MOVE_NAMES = ("narrower", "same", "wider")  # the columns of a beta row (viterbi.MOVES)
NODE_STEP = 4.0  # panel units between node columns
LEVEL_STEP = 2.5  # panel units between width levels


def input_name(index: int) -> str:
    """Inputs of a node: 0 = two layers back, 1 = previous layer, 2 + j = node j."""
    return ("c(k-2)", "c(k-1)")[index] if index < 2 else f"n{index - 2}"


def edge_names(num_nodes: int) -> list[str]:
    """Rows of an alpha set, in `topology.edge_index` order."""
    return [f"n{node} <- {input_name(j)}" for node in range(num_nodes) for j in range(node + 2)]


def source_name(layer: int, level: int) -> str:
    return "stem" if layer == 0 else f"layer {layer - 1}, level {level}"


def legal(probs: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """A beta row with its impossible moves (off the level range) as NaN, not 0."""
    return torch.where(mask, probs, torch.full_like(probs, float("nan")))


@register_views(SPACE_NAME)
class HiNASViews(SpaceViews):
    def weight_tables(self, supernet: HiNASSupernet) -> list[WeightTable]:  # type: ignore[override]
        options = supernet.options
        edges, ops = edge_names(options.num_nodes), list(options.primitives)
        alphas = supernet.alpha_weights().detach()  # (sets, E, K)
        tables = [table(f"alpha, layer {k}" if options.layerwise_alphas else "alpha, all layers",
                        edges, ops, list(weights)) for k, weights in enumerate(alphas)]
        betas, mask = supernet.beta_probs().detach(), supernet.beta_mask  # (L, S, 3)
        sources = [(layer, level) for layer in range(supernet.num_layers)
                   for level in range(supernet.num_levels) if bool(mask[layer, level].any())]
        tables.append(table("beta, moves of each source", [source_name(*s) for s in sources],
                            list(MOVE_NAMES), [legal(betas[s], mask[s]) for s in sources]))
        return tables

    def diagram(self, genotype: Genotype) -> Diagram:
        arch = genotype.arch
        levels, cells = arch["levels"], arch["cells"]
        if arch["layerwise"]:
            panels = [cell_panel(f"layer {k} cell (level {levels[k]})", cell)
                      for k, cell in enumerate(cells)]
        else:
            panels = [cell_panel("cell of every layer", cells[0])]
        flags = f"LWAS {'on' if arch['layerwise'] else 'off'}, ResL " \
                f"{'on' if arch['residual'] else 'off'}"
        title = (f"HiNAS {genotype.arch_hash()}: {len(levels)} layers, "
                 f"{arch['num_nodes']} nodes per cell, {flags}")
        return Diagram(title, (width_panel(levels, arch["residual"]), *panels))


def width_panel(levels: list[int], residual: bool) -> Panel:
    """The derived width path: one box per layer at its level (higher is wider)."""
    boxes = [Box("stem", "stem\nlevel 0", 0.0, 0.0, "input")]
    boxes += [Box(f"layer{k}", f"layer {k}\nlevel {level}", (k + 1) * NODE_STEP,
                  level * LEVEL_STEP) for k, level in enumerate(levels)]
    head = "head\nx - noise" if residual else "head\nclean image"
    boxes.append(Box("head", head, (len(levels) + 1) * NODE_STEP, levels[-1] * LEVEL_STEP,
                     "output"))
    keys = [box.key for box in boxes]
    arrows = tuple(Arrow(a, b) for a, b in zip(keys, keys[1:]))
    return Panel("width path (level per layer)", tuple(boxes), arrows)


def cell_panel(title: str, cell: list) -> Panel:
    """A derived cell: two inputs, N nodes each fed by two op-labelled edges, and the
    concatenation of all nodes as the output. Nodes zig-zag around the middle."""
    num_nodes = len(cell)
    boxes = [Box("in0", "c(k-2)", 0.0, 4.0, "input"), Box("in1", "c(k-1)", 0.0, -4.0, "input")]
    boxes += [Box(f"n{i}", f"n{i}", (i + 1) * NODE_STEP, 2.5 * (-1) ** i)
              for i in range(num_nodes)]
    boxes.append(Box("out", "concat", (num_nodes + 1) * NODE_STEP, 0.0, "output"))
    place = {box.key: box for box in boxes}

    def arrow(source: str, target: str, label: str = "") -> Arrow:
        return Arrow(source, target, label, bend_around(place[source], place[target], boxes))

    arrows = [arrow(f"in{index}" if index < 2 else f"n{index - 2}", f"n{node}", op)
              for node, pairs in enumerate(cell) for op, index in pairs]
    arrows += [arrow(f"n{i}", "out") for i in range(num_nodes)]
    return Panel(title, tuple(boxes), tuple(arrows))


def bend_around(start: Box, end: Box, boxes: list[Box], clearance: float = 1.2) -> float:
    """0 for a straight edge, else a curvature that bows the edge away from the first box
    it would pass through (arc3: a positive rad bows a left-to-right edge downwards)."""
    for box in boxes:
        if start.x < box.x < end.x:
            line_y = start.y + (end.y - start.y) * (box.x - start.x) / (end.x - start.x)
            if abs(line_y - box.y) < clearance:
                return 0.3 if box.y >= line_y else -0.3
    return 0.0
