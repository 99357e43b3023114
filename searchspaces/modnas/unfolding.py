"""Model-guided unfolding (MoD-NAS Sec. 2.1, Eqs. 6a-6b, Algorithm 1), around
the searchable denoisers (`supernet.py`) and the derived ones (`derived.py`).

Denoising as MAP estimation with a learned prior, solved by iterative
regularisation and unfolded into T stages, each with its own denoiser D_t (its own
weights; the architecture is one for all stages unless `share_architecture: false`):

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

import torch
from torch import nn

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
