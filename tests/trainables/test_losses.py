"""Differentiable SSIM and the HiNAS MSE + SSIM loss (Zhang et al., "Memory-efficient
hierarchical neural architecture search for image restoration", IJCV 2022, Eq. 7)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from skimage.metrics import structural_similarity

from trainables.loops import losses
from trainables.loops.losses import SSIM_EPSILON, DenoiseLoss, gaussian_window, ssim


def _pair(channels: int = 3, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    clean = torch.rand(2, channels, 24, 24, generator=generator)  # (B, C, H, W)
    out = (clean + 0.1 * torch.randn(clean.shape, generator=generator)).clamp(0, 1)
    return out, clean


def test_ssim_of_identical_images_is_one():
    _, clean = _pair()
    assert ssim(clean, clean).item() == pytest.approx(1.0, abs=1e-6)


def test_ssim_matches_skimage_gaussian_valid_region():
    out, clean = _pair(channels=1)
    ours = ssim(out[:1].double(), clean[:1].double()).item()
    reference = structural_similarity(
        out[0, 0].numpy().astype(np.float64),
        clean[0, 0].numpy().astype(np.float64),
        data_range=1.0,
        gaussian_weights=True,
        sigma=1.5,
        use_sample_covariance=False,
    )
    assert ours == pytest.approx(reference, abs=1e-6)
    assert ours < 0.99


def test_gaussian_window_is_normalised_and_cached():
    window = gaussian_window(3, torch.device("cpu"), torch.float32)
    assert window.shape == (3, 1, 11, 11)
    assert window[0].sum().item() == pytest.approx(1.0, abs=1e-6)
    assert gaussian_window(3, torch.device("cpu"), torch.float32) is window


def test_window_cached_under_inference_mode_still_supports_backward():
    gaussian_window.cache_clear()
    out, clean = _pair(channels=2)
    with torch.inference_mode():
        ssim(out, clean)
    out.requires_grad_(True)
    ssim(out, clean).backward()
    assert torch.isfinite(out.grad).all()


def test_lambda_zero_is_mse_and_skips_ssim(monkeypatch):
    def fail(*args):
        raise AssertionError("SSIM computed although ssim_lambda == 0")

    monkeypatch.setattr(losses, "ssim", fail)
    out, clean = _pair()
    assert DenoiseLoss()(out, clean).item() == pytest.approx(F.mse_loss(out, clean).item())


def test_loss_formula_and_average_terms():
    out, clean = _pair()
    expected = F.mse_loss(out, clean) + 0.6 * math.log10(1 / ssim(out, clean).item())
    loss = DenoiseLoss(ssim_lambda=0.6)(out, clean)
    assert loss.item() == pytest.approx(expected.item(), rel=1e-5)
    halved = DenoiseLoss(ssim_lambda=0.6, average_terms=True)(out, clean)
    assert halved.item() == pytest.approx(loss.item() / 2, rel=1e-6)


def test_loss_is_finite_when_ssim_is_negative():
    _, clean = _pair()
    out = (1 - clean).requires_grad_(True)  # inverted contrast: negative covariance
    assert ssim(out, clean).item() < 0
    loss = DenoiseLoss(ssim_lambda=0.5)(out, clean)
    expected = F.mse_loss(out, clean).item() + 0.5 * math.log10(1 / SSIM_EPSILON)
    assert loss.item() == pytest.approx(expected, rel=1e-5)
    loss.backward()
    assert torch.isfinite(out.grad).all() and out.grad.abs().sum() > 0


def test_gradient_flows_through_ssim_term():
    out, clean = _pair()
    out.requires_grad_(True)
    mse_grad = torch.autograd.grad(DenoiseLoss()(out, clean), out)[0]
    full_grad = torch.autograd.grad(DenoiseLoss(ssim_lambda=0.5)(out, clean), out)[0]
    assert torch.isfinite(full_grad).all()
    assert not torch.allclose(full_grad, mse_grad)
