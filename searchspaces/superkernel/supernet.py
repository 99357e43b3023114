"""The superkernel supernets (Mozejko et al. 2020, Secs. 3-4).

`SuperkernelSupernet`: the backbone of `network.py` with every searchable slot a
`SuperConv2d`; its architecture parameters are the structural distributions of
all slots. The Gumbel / relaxed-Bernoulli temperature follows
`options.temperature` by global training step (`temperature.py`; the search
loop calls `on_step` before every step), logged as `search/temperature`.

`FixedSupernet`: the no-superkernel baseline. The plain network of the fixed
genotype (largest kernel and growth, or the configured ones), with no
architecture parameters; the search phase just trains it and `derive()`
returns its genotype.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import torch
from torch import nn

from searchspaces.genotype import Genotype
from searchspaces.registry import Supernet
from searchspaces.superkernel.derived import (
    build_derived_network,
    filter_candidates,
    fixed_genotype,
    make_genotype,
)
from searchspaces.superkernel.distributions import Choice
from searchspaces.superkernel.network import Structure, SuperkernelNetwork
from searchspaces.superkernel.operations import SuperConv2d

if TYPE_CHECKING:
    from searchspaces.superkernel.options import SuperkernelOptions


class SuperkernelSupernet(Supernet):
    prefers_nhwc = True  # channels_last: a 1.4-2x faster CPU training step (measured)

    def __init__(self, options: SuperkernelOptions, in_channels: int) -> None:
        super().__init__()
        self.options = options
        self.structure = Structure.from_mapping(options)
        self.network = SuperkernelNetwork(
            self.structure, in_channels, self._superconv, options.skipinit_scale
        )
        self.temperature = math.nan
        self.on_step(0)

    def _superconv(self, name: str, in_channels: int, level_width: int) -> tuple[nn.Module, int]:
        options = self.options
        counts = filter_candidates(options.growth_rates, level_width)
        slot = SuperConv2d(in_channels, options.kernel_sizes, counts, options.superkernel,
                           options.mode, options.key_dim, slot_name=name,
                           activation=options.activation)
        return slot, slot.out_channels

    def slots(self) -> list[SuperConv2d]:
        """The searchable convolutions, in build order."""
        return [module for module in self.modules() if isinstance(module, SuperConv2d)]

    def arch_parameters(self) -> list[nn.Parameter]:
        return [param for slot in self.slots() for param in slot.distribution.parameters()]

    def arch_distributions(self) -> list[torch.Tensor]:
        return [probs for slot in self.slots() for probs in slot.distribution.probabilities()]

    def on_step(self, step: int) -> None:
        """Every slot's temperature at global training step `step` (0-based)."""
        temperature = self.options.temperature.at(step)
        if temperature != self.temperature:  # constant after the decay: nothing to do
            self.temperature = temperature
            for slot in self.slots():
                slot.distribution.temperature = temperature

    def search_metrics(self) -> dict[str, float]:
        return {"search/temperature": self.temperature}

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        return self.network(image)  # (B, C, H, W)

    def derive(self) -> Genotype:
        return self._genotype({slot.slot_name: slot.distribution.choose() for slot in self.slots()})

    def load_choices(self, choices: dict[str, Choice]) -> Genotype:
        """Make every slot's distribution one-hot on its choice; returns the genotype."""
        for slot in self.slots():
            slot.distribution.set_choice(choices[slot.slot_name])
        return self._genotype(choices)

    def _genotype(self, choices: dict[str, Choice]) -> Genotype:
        """[k, f] per slot; filterwise slots add which filters survive (genotype v2)."""
        sizes, layers = self.options.kernel_sizes, {}
        for slot in self.slots():
            choice = choices[slot.slot_name]
            entry = [sizes[choice.kernel_index], choice.filters]
            if not slot.distribution.prefix_patterns:
                entry.append(list(choice.indices()))
            layers[slot.slot_name] = entry
        return make_genotype(self.structure, sizes, layers)


class FixedSupernet(Supernet):
    """The no-superkernel baseline: a plain network, no architecture parameters."""

    def __init__(self, options: SuperkernelOptions, in_channels: int) -> None:
        super().__init__()
        self.genotype = fixed_genotype(options)
        self.network = build_derived_network(self.genotype, in_channels, options.skipinit_scale)

    def arch_parameters(self) -> list[nn.Parameter]:
        return []

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        return self.network(image)  # (B, C, H, W)

    def derive(self) -> Genotype:
        return self.genotype
