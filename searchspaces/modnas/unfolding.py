"""Model-guided unfolding (MoD-NAS Sec. 2.1, Eqs. 6a-6b, Algorithm 1; SPEC 3.1) and the
T-stage MoD-NAS supernet built on it.

Denoising as MAP estimation with a learned prior, solved by iterative
regularisation and unfolded into T stages, each with its own denoiser D_t:

    x_0 = y;   v_t = D_t(x_t);   x_{t+1} = x_t - delta_t * ((x_t - y) + eta_t * (x_t - v_t))

with learnable step sizes delta_t and prior weights eta_t per stage
(initialised to 0.1 and 0.9 as in the DPDNN code). They are network weights,
trained with the weights, not architecture parameters. The output is x_T.
Without unfolding (the "plain differentiable NAS" baseline of Fig. 3) the
network is one denoiser: y -> D(y).

The stage loop follows the structure of deep unfolding networks such as KAIR's
USRNet: per-stage parameters, a prior network per stage, one loop.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import torch
import torch.nn.functional as F
from torch import nn

from searchspaces.genotype import Genotype
from searchspaces.modnas.plan import full_width_arch, parameter_count
from searchspaces.modnas.unet import GatedStem, MixedLayer, SearchBlock, SearchUNet
from searchspaces.names import MODNAS as SPACE_NAME
from searchspaces.registry import Supernet

if TYPE_CHECKING:
    from searchspaces.modnas.space import ModNASOptions

GENOTYPE_VERSION = 2  # 2 added arch.skip_join and arch.stem (version 1: add, searched)
DELTA_INIT = 0.1  # step size delta_t (DPDNN code)
ETA_INIT = 0.9  # prior weight eta_t (DPDNN code)


class ModelGuidedUnfolding(nn.Module):
    """T stages of Eq. 6b around the given denoisers, or one plain denoiser."""

    def __init__(self, denoisers: list[nn.Module], unfolding: bool = True) -> None:
        super().__init__()
        self.denoisers = nn.ModuleList(denoisers)
        self.unfolding = unfolding
        if unfolding:
            stages = len(denoisers)
            self.deltas = nn.Parameter(torch.full((stages,), DELTA_INIT))  # (T,)
            self.etas = nn.Parameter(torch.full((stages,), ETA_INIT))  # (T,)
        elif len(denoisers) != 1:
            raise ValueError(f"stages: without unfolding there is one denoiser, "
                             f"got {len(denoisers)}")

    def forward(self, y: torch.Tensor) -> torch.Tensor:
        if not self.unfolding:
            return self.denoisers[0](y)  # (B, C, H, W)
        x = y
        for t, denoiser in enumerate(self.denoisers):
            v = denoiser(x)  # (B, C, H, W), Eq. 6a
            x = x - self.deltas[t] * ((x - y) + self.etas[t] * (x - v))  # Eq. 6b
        return x


class ModNASSupernet(Supernet):
    """T searchable U-nets inside the model-guided unfolding (Algorithm 1)."""

    prefers_nhwc = True  # channels_last: a 1.3x faster CPU training step (measured)

    def __init__(self, options: ModNASOptions, in_channels: int) -> None:
        super().__init__()
        self.options, self.in_channels = options, in_channels
        denoisers = [SearchUNet(options, in_channels) for _ in range(options.stages)]
        self.network = ModelGuidedUnfolding(denoisers, options.unfolding)

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        return self.network(image)

    def arch_parameters(self) -> list[nn.Parameter]:
        params: list[nn.Parameter] = []
        for module in self.modules():
            if isinstance(module, MixedLayer):
                params += module.arch_parameters()
            elif isinstance(module, SearchBlock):
                params += list(module.gammas)
            elif isinstance(module, GatedStem):
                params.append(module.gate_logits)
        return params

    def width_gates(self) -> torch.Tensor:
        """Every width gate of every op and of a searched stem, flattened: (gates,)."""
        gates = [module.gates().flatten() for module in self.modules()
                 if isinstance(module, (MixedLayer, GatedStem))]
        return torch.cat(gates)

    def arch_penalty(self) -> torch.Tensor | None:
        """Ours, not the paper's: `width_penalty` * the mean width gate, an L1 term (the
        gates are softplus values, >= 0) that lets the width rule (Eq. 10a) drop channels;
        None at the default 0 (the paper's search, no sparsity pressure)."""
        weight = self.options.width_penalty
        return weight * self.width_gates().mean() if weight > 0 else None

    def arch_distributions(self) -> list[torch.Tensor]:
        """softmax(alpha) of every layer and softmax(gamma) of every dense path choice."""
        distributions = []
        for module in self.modules():
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
        denoisers = [denoiser.derive() for denoiser in self.network.denoisers]
        return self._genotype(self._arch(denoisers))

    @torch.no_grad()
    def load_arch(self, denoisers: list[dict[str, Any]], logit: float = 10.0) -> Genotype:
        """Set the architecture parameters so that `derive()` yields these denoiser
        architectures (valid when every kept count c satisfies c - m < rho * c).
        Returns the expected genotype."""
        for denoiser, arch in zip(self.network.denoisers, denoisers):
            denoiser.load(arch, logit)
        return self._genotype(self._arch(denoisers))
