"""Training losses: MSE plus an optional SSIM term.

HiNAS (Zhang et al., "Memory-Efficient Hierarchical Neural Architecture Search
for Image Denoising", CVPR 2020, Eq. 7) trains with
`loss = MSE(out, clean) + lambda * log10(1 / SSIM(out, clean))`; its code
(`modeling/dn_supernet.py`, `dn_compnet.py`) divides the sum of the listed terms by
their count, which `average_terms` reproduces for its two terms (SOLVER.LOSS
['mse', 'log_ssim']). At lambda = 0 that is MSE / 2 (LOSS_WEIGHT [1, 0]); the code with
the SSIM term left out of the list (LOSS ['mse'], the journal's "single MSE loss",
Table 4) trains on MSE itself: `average_terms: false`.
The SSIM here is the differentiable one of Wang et al. (TIP 2004, Eq. 13): an
11x11 Gaussian window with sigma 1.5, C1 = (0.01 L)^2 and C2 = (0.03 L)^2 with
L = 1 for data in [0, 1], per channel, averaged over the 'valid' region (the map
where the window fits), or with `padding="same"` over the whole image, the window
zero-padded at the borders as in the code's `log_SSIM_loss` (`modeling/loss.py`).
"""

from __future__ import annotations

import functools

import torch
import torch.nn.functional as F
from torch import nn

WINDOW_SIZE = 11
WINDOW_SIGMA = 1.5
C1 = 0.01**2
C2 = 0.03**2
SSIM_EPSILON = 1e-6  # floor for SSIM inside the log: early outputs can have SSIM <= 0


@functools.lru_cache(maxsize=32)
def gaussian_window(channels: int, device: torch.device, dtype: torch.dtype) -> torch.Tensor:
    """Normalised 11x11 Gaussian, repeated for a depthwise conv: (channels, 1, 11, 11)."""
    with torch.inference_mode(False), torch.no_grad():  # a normal tensor, reusable with autograd
        coords = torch.arange(WINDOW_SIZE, dtype=torch.float64) - (WINDOW_SIZE - 1) / 2
        profile = torch.exp(-(coords**2) / (2 * WINDOW_SIGMA**2))
        profile = profile / profile.sum()  # (11,)
        window = torch.outer(profile, profile)  # (11, 11)
        return window.expand(channels, 1, WINDOW_SIZE, WINDOW_SIZE).to(device, dtype).contiguous()


def _local_mean(x: torch.Tensor, window: torch.Tensor, padding: int) -> torch.Tensor:
    return F.conv2d(x, window, padding=padding, groups=x.shape[1])  # valid: (B, C, H-10, W-10)


def ssim(x: torch.Tensor, y: torch.Tensor, padding: str = "valid") -> torch.Tensor:
    """Differentiable mean SSIM of two (B, C, H, W) batches in [0, 1] (Wang et al., Eq. 13);
    `padding` "valid" or "same" (zeros around the image, the HiNAS code's)."""
    window = gaussian_window(x.shape[1], x.device, x.dtype)
    pad = WINDOW_SIZE // 2 if padding == "same" else 0
    mean_x, mean_y = _local_mean(x, window, pad), _local_mean(y, window, pad)
    var_x = _local_mean(x * x, window, pad) - mean_x**2
    var_y = _local_mean(y * y, window, pad) - mean_y**2
    covariance = _local_mean(x * y, window, pad) - mean_x * mean_y
    luminance = (2 * mean_x * mean_y + C1) / (mean_x**2 + mean_y**2 + C1)
    structure = (2 * covariance + C2) / (var_x + var_y + C2)
    return (luminance * structure).mean()


class DenoiseLoss(nn.Module):
    """`MSE + ssim_lambda * log10(1 / max(SSIM, eps))`, halved when `average_terms` (HiNAS Eq. 7).

    The SSIM term is not computed at all when `ssim_lambda == 0`.
    """

    def __init__(self, ssim_lambda: float = 0.0, average_terms: bool = False,
                 ssim_padding: str = "valid") -> None:
        super().__init__()
        if ssim_padding not in ("valid", "same"):
            raise ValueError(f"ssim_padding: expected valid or same, got {ssim_padding!r}")
        self.ssim_lambda = ssim_lambda
        self.average_terms = average_terms
        self.ssim_padding = ssim_padding

    def forward(self, out: torch.Tensor, clean: torch.Tensor) -> torch.Tensor:
        loss = F.mse_loss(out, clean)
        if self.ssim_lambda != 0:
            similarity = ssim(out, clean, self.ssim_padding).clamp_min(SSIM_EPSILON)
            loss = loss - self.ssim_lambda * torch.log10(similarity)
        return loss / 2 if self.average_terms else loss

    def extra_repr(self) -> str:
        return (f"ssim_lambda={self.ssim_lambda}, average_terms={self.average_terms}, "
                f"ssim_padding={self.ssim_padding}")
