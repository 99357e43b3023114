"""The T-stage MoD-NAS supernet: searchable U-nets (`unet.py`) inside the model-guided
unfolding (`unfolding.py`; MoD-NAS Sec. 2-3, Algorithm 1).

One architecture, T stages (`share_architecture: true`, the default). The paper
searches once and repeats one denoiser architecture in every stage: its T = 1, 3
and 6 models have 418k, 1,253k and 2,506k parameters (Table 2), exactly
proportional to T. Each stage has its own weights; the architecture parameters
(operation logits alpha, width gate logits, dense path logits gamma) of every
stage are the first stage's own Parameter objects, so the architecture gradient
of a step is the sum over the stages and one denoiser is derived. The genotype
then holds one denoiser and the searched T, and `retrain.stages` retrains it at
any T (`ModNASSpace.at_stages`). `share_architecture: false` keeps one
searchable architecture per stage (a legitimate variant, and this project's
earlier supernet): T denoisers are derived.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import torch
import torch.nn.functional as F
from torch import nn

from searchspaces.genotype import Genotype
from searchspaces.modnas.plan import full_width_arch, parameter_count
from searchspaces.modnas.unet import GatedStem, MixedLayer, SearchBlock, SearchUNet
from searchspaces.modnas.unfolding import ModelGuidedUnfolding
from searchspaces.names import MODNAS as SPACE_NAME
from searchspaces.registry import Supernet

if TYPE_CHECKING:
    from searchspaces.modnas.options import ModNASOptions

# 2 added arch.skip_join and arch.stem (version 1: add, searched); 3 added
# arch.share_architecture (versions 1-2: one denoiser per stage)
GENOTYPE_VERSION = 3
ARCH_ATTRIBUTES = {MixedLayer: ("alphas", "gate_logits"), SearchBlock: ("gammas",),
                   GatedStem: ("gate_logits",)}


def share_architecture(first: SearchUNet, other: SearchUNet) -> None:
    """Make `other` use `first`'s architecture parameters (same Parameter objects);
    its weights stay its own."""
    for source, target in zip(list(first.modules()), list(other.modules()), strict=True):
        for attribute in ARCH_ATTRIBUTES.get(type(source), ()):
            setattr(target, attribute, getattr(source, attribute))


class ModNASSupernet(Supernet):
    """T searchable U-nets inside the model-guided unfolding (Algorithm 1)."""

    prefers_nhwc = True  # channels_last: a 1.3x faster CPU training step (measured)

    def __init__(self, options: ModNASOptions, in_channels: int) -> None:
        super().__init__()
        self.options, self.in_channels = options, in_channels
        denoisers = [SearchUNet(options, in_channels) for _ in range(options.stages)]
        if options.share_architecture:
            for other in denoisers[1:]:
                share_architecture(denoisers[0], other)
        self.network = ModelGuidedUnfolding(denoisers, options.unfolding)

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        return self.network(image)

    def searched(self) -> list[SearchUNet]:
        """The denoisers that hold distinct architectures: the first when shared."""
        denoisers = list(self.network.denoisers)
        return denoisers[:1] if self.options.share_architecture else denoisers

    def _searched_modules(self) -> list[nn.Module]:
        return [module for unet in self.searched() for module in unet.modules()]

    def arch_parameters(self) -> list[nn.Parameter]:
        params: list[nn.Parameter] = []
        for module in self._searched_modules():
            if isinstance(module, MixedLayer):
                params += module.arch_parameters()
            elif isinstance(module, SearchBlock):
                params += list(module.gammas)
            elif isinstance(module, GatedStem):
                params.append(module.gate_logits)
        return params

    def width_gates(self) -> torch.Tensor:
        """Every distinct width gate of every op and of a searched stem, flattened."""
        gates = [module.gates().flatten() for module in self._searched_modules()
                 if isinstance(module, (MixedLayer, GatedStem))]
        return torch.cat(gates)

    def gate_rows(self) -> list[torch.Tensor]:
        """The width gates of every distinct op and searched stem, one row each: (W,)."""
        rows: list[torch.Tensor] = []
        for module in self._searched_modules():
            if isinstance(module, (MixedLayer, GatedStem)):
                rows += list(module.gates().reshape(-1, module.gate_logits.shape[-1]))
        return rows

    def arch_penalty(self) -> torch.Tensor | None:
        """Ours, not the paper's; None at the default weight 0 (the paper's search, no
        sparsity pressure). `l1`: `width_penalty` * the mean width gate (the gates are
        softplus values, >= 0). It shrinks the gates, but the width rule (Eq. 10a) keeps a
        fraction rho of each row's gate mass, so a uniform shrink drops no channel.
        `hoyer`: `width_penalty` * the mean over gate rows of ||g||_1 / (sqrt(n) ||g||_2)
        (Hoyer's sparsity measure: 1 for equal gates, 1/sqrt(n) for one gate), blind to a
        row's scale like the width rule, so it only moves the gates apart: equal gates are
        a stationary point that the data gradient's differences tip over."""
        weight = self.options.width_penalty
        if weight == 0:
            return None
        if self.options.width_regularizer == "l1":
            return weight * self.width_gates().mean()
        rows = torch.stack(self.gate_rows())  # (rows, W)
        hoyer = rows.sum(-1) / (rows.shape[-1] ** 0.5 * rows.norm(dim=-1) + 1e-12)
        return weight * hoyer.mean()

    def arch_distributions(self) -> list[torch.Tensor]:
        """softmax(alpha) of every layer and softmax(gamma) of every dense path choice."""
        distributions = []
        for module in self._searched_modules():
            if isinstance(module, MixedLayer):
                distributions.append(F.softmax(module.alphas, dim=0))
            elif isinstance(module, SearchBlock):
                distributions += [F.softmax(gamma, dim=0) for gamma in module.gammas]
        return distributions

    def _arch(self, denoisers: list[dict[str, Any]]) -> dict[str, Any]:
        options = self.options
        return {
            "stages": options.stages,
            "unfolding": options.unfolding,
            "levels": options.levels,
            "width": options.width,
            "channel_multiple": options.channel_multiple,
            "depth_search": options.depth_search,
            "skip_join": options.skip_join,
            "stem": options.stem,
            "share_architecture": options.share_architecture,
            "denoisers": denoisers,
        }

    def _genotype(self, arch: dict[str, Any]) -> Genotype:
        """The genotype, with the parameter counts of the derived net at the kept and at
        the full width in its provenance (the width search's saving, Table 1)."""
        provenance = {
            "params_derived": parameter_count(arch, self.in_channels),
            "params_full_width": parameter_count(full_width_arch(arch), self.in_channels),
        }
        return Genotype(SPACE_NAME, self.options.all_primitives(), arch, provenance,
                        version=GENOTYPE_VERSION)

    def derive(self) -> Genotype:
        return self._genotype(self._arch([denoiser.derive() for denoiser in self.searched()]))

    @torch.no_grad()
    def load_arch(self, denoisers: list[dict[str, Any]], logit: float = 10.0) -> Genotype:
        """Set the architecture parameters so that `derive()` yields these denoiser
        architectures (one when shared; valid when every kept count c satisfies
        c - m < rho * c). Returns the expected genotype."""
        searched = self.searched()
        if len(denoisers) != len(searched):
            raise ValueError(f"expected {len(searched)} denoiser architectures, got "
                             f"{len(denoisers)}")
        for denoiser, arch in zip(searched, denoisers):
            denoiser.load(arch, logit)
        return self._genotype(self._arch(denoisers))
