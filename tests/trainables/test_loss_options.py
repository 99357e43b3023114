"""Loss options of the HiNAS code (modeling/loss.py, dn_supernet.py) against hand
computations on tiny tensors: SSIM with the window zero-padded ("same", the code's
log_SSIM_loss) or where it fits ("valid"), and the terms' average at lambda = 0."""

import math

import pytest
import torch
from pydantic import ValidationError

from studyspec.schema import LossSpec
from trainables.loops.losses import C1, C2, DenoiseLoss, ssim

# centre weight of the normalised 11-tap Gaussian (sigma 1.5), squared for the 2-D window
CENTRE = (1 / (1 + 2 * sum(math.exp(-k * k / 4.5) for k in range(1, 6)))) ** 2


def constant(value: float, size: int) -> torch.Tensor:
    return torch.full((1, 1, size, size), value, dtype=torch.float64)  # (B, C, H, W)


def test_same_padding_on_one_pixel_sees_only_the_window_centre():
    a, b, w = 0.6, 0.3, CENTRE
    # zero padding: mean w x, second moment w x^2, so variance w (1 - w) x^2
    luminance = (2 * w * w * a * b + C1) / (w * w * (a * a + b * b) + C1)
    structure = (2 * w * (1 - w) * a * b + C2) / (w * (1 - w) * (a * a + b * b) + C2)
    assert ssim(constant(a, 1), constant(b, 1), "same").item() == pytest.approx(
        luminance * structure, rel=1e-12)


def test_valid_padding_on_flat_images_is_the_luminance_term():
    a, b = 0.6, 0.3
    expected = (2 * a * b + C1) / (a * a + b * b + C1)  # no variance: structure 1
    assert ssim(constant(a, 11), constant(b, 11)).item() == pytest.approx(expected, rel=1e-12)
    # "same" also counts the border windows, which see zeros: a different mean
    assert ssim(constant(a, 11), constant(b, 11), "same").item() != pytest.approx(expected)


def test_the_loss_uses_the_padding_it_is_given():
    out, clean = constant(0.6, 1), constant(0.3, 1)
    loss = DenoiseLoss(**LossSpec(ssim_lambda=1.0, ssim_padding="same").model_dump())
    expected = 0.09 - math.log10(ssim(out, clean, "same").item())
    assert loss(out, clean).item() == pytest.approx(expected, rel=1e-12)


@pytest.mark.parametrize("average, expected", [(True, 0.125), (False, 0.25)])
def test_lambda_zero_is_mse_or_half_of_it(average, expected):
    """MSE of 0 against 0.5 is 0.25; the code's two listed terms at lambda 0 (LOSS_WEIGHT
    [1, 0]) give half of it, its MSE alone (LOSS ['mse']) all of it."""
    loss = DenoiseLoss(**LossSpec(ssim_lambda=0.0, average_terms=average).model_dump())
    assert loss(constant(0.0, 4), constant(0.5, 4)).item() == pytest.approx(expected)


def test_unknown_padding_names_the_key():
    with pytest.raises(ValidationError) as caught:
        LossSpec(ssim_padding="full")
    assert caught.value.errors()[0]["loc"] == ("ssim_padding",)
    with pytest.raises(ValueError, match="ssim_padding"):
        DenoiseLoss(ssim_padding="full")
