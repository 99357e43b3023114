"""HiNAS supernet: outer (width) space with beta routing, cell sharing on/off and
layer-wise alphas (journal Secs. 3.1-3.2, Fig. 2, Eqs. 4-6).

Layout. The stem is the level-0 source of layer 0. Layer l holds cells at levels
0..min(l + 1, S - 1): layer 0 only 0 and 1. Cell (l, t) has node width
int(W * gamma_t) and outputs N times that.

Routing. Every source (the stem, then each cell of layers 0..L-2) sends its
output through one 1x1 conv+BN projection per legal move (narrower, same,
wider) to the next layer. `beta` has shape (L, S, 3): row beta[l, s] holds the
move logits of the source at level s one step before layer l (row [0, 0] is
the stem). Rows of sources that do not exist and moves off the level range are
masked: they get probability 0.

Two-back input (ours; the paper only names C_{l-2}^t): cell (l, t) takes a 1x1
projection of the output of layer l-2 at level t, or at that layer's widest
level when level t did not exist there yet; layers 0 and 1 take the stem.

Cell sharing. ON (Eq. 5): the cell (l, t) runs once on the beta-weighted sum of
its incoming projections. OFF (Auto-DeepLab, Eq. 6): one cell per incoming path
(separate weights, same alphas), each run on its own projection; the
beta-weighted outputs are summed. At 3 layers x 3 levels: 8 runs against 14.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import torch
import torch.nn.functional as F
from torch import nn

from searchspaces.genotype import Genotype
from searchspaces.hinas.blocks import AsppHead, Head, Projection, Stem, conv_bn
from searchspaces.hinas.cells import CellForm, SearchCell, derive_cell
from searchspaces.hinas.sampling import PathSampling
from searchspaces.hinas.topology import add_all, edge_index, num_edges
from searchspaces.hinas.viterbi import MOVES, viterbi
from searchspaces.names import HINAS as SPACE_NAME
from searchspaces.registry import Supernet

if TYPE_CHECKING:
    from searchspaces.hinas.options import HiNASOptions

_MASKED_LOGIT = -1e4  # exp() underflows to exactly 0 in float32


class HiNASSupernet(PathSampling, Supernet):  # PathSampling: the RSWS hooks (sampling.py)
    prefers_nhwc = True  # channels_last trains it faster on CPU (trainables.loops.devices)

    def __init__(self, options: HiNASOptions, in_channels: int,
                 cell_form: CellForm = "stacked") -> None:
        """`cell_form`: how every search cell computes its sums (`cells.py`); the same
        function and state dict in each form."""
        super().__init__()
        self.options = options
        self.num_layers = options.num_layers
        self.num_levels = len(options.width_multipliers)
        self.node_widths = [int(options.width * g) for g in options.width_multipliers]
        nodes, act = options.num_nodes, options.activation

        network = options.network()
        self.code_two_back = network.two_back == "code"
        self.sigmoid_output = network.supernet_output == "code"
        stem_out = self._channels(-1, 0)
        self.stem = Stem(in_channels, options.stem_channels, stem_out, False, act,
                         network.stem == "code")
        self.routes = nn.ModuleDict()  # "l_s_t": source level s (before layer l) -> level t
        self.two_back = nn.ModuleDict()  # "l_t": two-back source -> cell (l, t) (paper)
        self.cells = nn.ModuleDict()  # "l_t" (sharing) or "l_s_t" (one per incoming path)
        for layer in range(self.num_layers):
            for target in self.levels(layer):
                width = self.node_widths[target]
                if not self.code_two_back:
                    self.two_back[f"{layer}_{target}"] = Projection(
                        self._channels(*self.two_back_source(layer, target)), width, False
                    )
                for source in self.incoming(layer, target):
                    key = f"{layer}_{source}_{target}"
                    self.routes[key] = Projection(self._channels(layer - 1, source), width, False)
                    if not options.cell_sharing:
                        self.cells[key] = SearchCell(width, nodes, options.primitives, act,
                                                     cell_form)
                if options.cell_sharing:
                    self.cells[f"{layer}_{target}"] = SearchCell(
                        width, nodes, options.primitives, act, cell_form
                    )
        if self.code_two_back:  # the official reduce1 and upsamplers (module docstring)
            self.reduce = conv_bn(options.stem_channels, self.node_widths[0], 3, affine=False)
            self.widen = nn.ModuleList(
                Projection(self.node_widths[t - 1], self.node_widths[t], False)
                for t in range(1, min(self.num_levels, self.num_layers + 1)))
        self.head = self._head(network.supernet_head, in_channels)

        num_sets = self.num_layers if options.layerwise_alphas else 1
        self.alphas = nn.Parameter(torch.zeros(num_sets, num_edges(nodes), len(options.primitives)))
        self.betas = nn.Parameter(torch.zeros(self.num_layers, self.num_levels, len(MOVES)))
        self.register_buffer("beta_mask", self._legal_moves(), persistent=False)

    # --- structure ------------------------------------------------------------------
    def levels(self, layer: int) -> range:
        """Width levels present at `layer`; layer -1 is the stem (level 0 only)."""
        return range(min(layer + 2, self.num_levels))

    def incoming(self, layer: int, target: int) -> list[int]:
        """Source levels (one step before `layer`) that can move to `target`."""
        return [s for s in self.levels(layer - 1) if abs(target - s) <= 1]

    def two_back_source(self, layer: int, target: int) -> tuple[int, int]:
        """(layer, level) whose output is the two-back input of cell (layer, target)."""
        if layer < 2:
            return -1, 0
        return layer - 2, min(target, self.levels(layer - 2)[-1])

    def _channels(self, layer: int, level: int) -> int:
        if layer < 0 and self.options.network().stem == "paper":
            return self.options.stem_channels
        return self.options.num_nodes * self.node_widths[level]  # the code's stem: level 0

    def _head(self, form: str, in_channels: int) -> nn.Module:
        """The end part on the last layer's outputs (all levels): `supernet_head`."""
        last, options = self.num_layers - 1, self.options
        level_channels = [self._channels(last, level) for level in self.levels(last)]
        if form == "paper":
            return Head(sum(level_channels), options.stem_channels, in_channels,
                        options.activation)
        return AsppHead(level_channels, self._channels(last, 0), in_channels, False,
                        options.activation)

    def _legal_moves(self) -> torch.Tensor:
        mask = torch.zeros(self.num_layers, self.num_levels, len(MOVES), dtype=torch.bool)
        for layer in range(self.num_layers):
            for source in self.levels(layer - 1):
                for m, move in enumerate(MOVES):
                    mask[layer, source, m] = (source + move) in self.levels(layer)
        return mask

    def cell_calls(self) -> int:
        """Total cell runs since construction (or since `reset_cell_calls`)."""
        return sum(cell.calls for cell in self.cells.values())

    def reset_cell_calls(self) -> None:
        for cell in self.cells.values():
            cell.calls = 0

    # --- architecture parameters ----------------------------------------------------
    def arch_parameters(self) -> list[nn.Parameter]:
        return [self.alphas, self.betas]

    def alpha_set(self, layer: int) -> int:
        """Index of the alpha set used by `layer` (LWAS: one per layer, else one)."""
        return layer if self.options.layerwise_alphas else 0

    def alpha_weights(self) -> torch.Tensor:
        return F.softmax(self.alphas, dim=-1)  # (sets, E, K)

    def beta_probs(self) -> torch.Tensor:
        """softmax over each source's legal moves; masked entries are exactly 0."""
        logits = torch.where(self.beta_mask, self.betas, torch.full_like(self.betas, _MASKED_LOGIT))
        return F.softmax(logits, dim=-1) * self.beta_mask  # (L, S, 3)

    def arch_distributions(self) -> list[torch.Tensor]:
        rows = self.beta_mask.any(-1)  # sources that exist
        return [self.alpha_weights().flatten(0, 1), self.beta_probs()[rows]]

    # --- forward --------------------------------------------------------------------
    def forward(self, image: torch.Tensor) -> torch.Tensor:
        first, stem = self.stem(image)  # (B, stem, H, W), (B, C_stem, H, W)
        alphas, betas = self.alpha_weights(), self.beta_probs()
        history: list[dict[int, torch.Tensor]] = [{0: stem}]  # history[l + 1] = layer l
        mixed = {0: self.reduce(first)} if self.code_two_back else {}  # inputs of layer l - 1
        for layer in range(self.num_layers):
            weights = alphas[self.alpha_set(layer)]
            paths = {t: self._paths(layer, t, history, betas) for t in self.levels(layer)}
            two_back = self._two_back(layer, history, mixed)
            if self.code_two_back or self.options.cell_sharing:
                mixed = {t: add_all([w * f for w, f, _ in p]) for t, p in paths.items()}
            history.append({t: self._cell_output(layer, t, two_back[t], paths[t], mixed, weights)
                            for t in self.levels(layer)})
        out = self.head(list(history[-1].values()))  # (B, C_in, H, W)
        out = image - out if self.options.residual else out
        return torch.sigmoid(out) if self.sigmoid_output else out

    def _paths(self, layer: int, target: int, history: list[dict[int, torch.Tensor]],
               betas: torch.Tensor) -> list[tuple[torch.Tensor, torch.Tensor, str]]:
        """(beta weight, projected input f_{l-1}^k, key) of each path into cell (l, t)."""
        paths = []
        for source in self.incoming(layer, target):
            key = f"{layer}_{source}_{target}"
            weight = betas[layer, source, target - source + 1]
            paths.append((weight, self.routes[key](history[layer][source]), key))
        return paths

    def _two_back(self, layer: int, history: list[dict[int, torch.Tensor]],
                  mixed: dict[int, torch.Tensor]) -> dict[int, torch.Tensor]:
        """The two-back input of each cell of `layer`: a projection of the output two
        layers back (paper), or the mixture the cell one layer back received, widened
        from the level below where that level did not exist yet (code)."""
        inputs: dict[int, torch.Tensor] = {}
        for target in self.levels(layer):
            if not self.code_two_back:
                back_layer, back_level = self.two_back_source(layer, target)
                source = history[back_layer + 1][back_level]
                inputs[target] = self.two_back[f"{layer}_{target}"](source)
            elif target in mixed:
                inputs[target] = mixed[target]
            else:
                inputs[target] = self.widen[target - 1](inputs[target - 1])
        return inputs

    def _cell_output(
        self,
        layer: int,
        target: int,
        two_back: torch.Tensor,
        paths: list[tuple[torch.Tensor, torch.Tensor, str]],
        mixed: dict[int, torch.Tensor],
        weights: torch.Tensor,
    ) -> torch.Tensor:
        if self.options.cell_sharing:  # Eq. 5
            return self.cells[f"{layer}_{target}"](two_back, mixed[target], weights)
        return add_all(  # Eq. 6
            [weight * self.cells[key](two_back, feature, weights) for weight, feature, key in paths]
        )

    # --- derivation -----------------------------------------------------------------
    def derive(self) -> Genotype:
        primitives = self.options.primitives
        cells = [
            derive_cell(weights, primitives, self.options.num_nodes)
            for weights in self.alpha_weights()
        ]
        levels = viterbi(self.beta_probs().detach().tolist())
        return Genotype(SPACE_NAME, tuple(primitives), self._arch(cells, levels))

    def _arch(self, cells: list, levels: list[int]) -> dict[str, Any]:
        return {
            "cells": cells,
            "levels": [int(level) for level in levels],
            "num_nodes": self.options.num_nodes,
            "layerwise": self.options.layerwise_alphas,
            "residual": self.options.residual,
        }

    @torch.no_grad()
    def load_arch(self, cells: list, levels: list[int], logit: float = 10.0) -> Genotype:
        """Set alphas/betas so that `derive()` yields this architecture: `logit` on the
        chosen (edge, op) and moves, 0 elsewhere. Returns the expected genotype."""
        primitives = list(self.options.primitives)
        self.alphas.zero_()
        for index, cell in enumerate(cells):
            for node, pairs in enumerate(cell):
                for name, input_index in pairs:
                    row = edge_index(node, input_index)
                    self.alphas[index, row, primitives.index(name)] = logit
        self.betas.zero_()
        previous = 0
        for layer, level in enumerate(levels):
            self.betas[layer, previous, level - previous + 1] = logit
            previous = level
        return Genotype(SPACE_NAME, tuple(primitives), self._arch(cells, list(levels)))
