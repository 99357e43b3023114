"""The evaluation protocol of `trainables/loops/evaluation.py` on tiny images and fake models."""

from __future__ import annotations

import re

import numpy as np
import pytest
import torch
from skimage.metrics import peak_signal_noise_ratio, structural_similarity
from torch import nn

from trainables.data.degradations import degrade_for_test
from trainables.data.images import NamedImage
from trainables.loops import evaluation
from trainables.loops.evaluation import (
    denoise_image,
    evaluate_images,
    evaluate_sets,
    protocol_hash,
    to_uint8,
)


def _image(name: str, channels: int = 1, height: int = 24, width: int = 24) -> NamedImage:
    """A clean image whose values are exact 8-bit levels in [0, 254] / 255."""
    rng = np.random.default_rng(len(name) * 7 + channels)
    levels = rng.integers(0, 255, size=(height, width, channels))
    return NamedImage(name, (levels / 255).astype(np.float32), f"test:{name}")


class _Constant(nn.Module):
    """Ignores its input and returns a fixed (H, W, C) image: an oracle denoiser."""

    def __init__(self, pixels: np.ndarray) -> None:
        super().__init__()
        self.register_buffer("output", torch.from_numpy(pixels).permute(2, 0, 1)[None])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.output.clone()


class _Recorder(nn.Identity):
    """Identity that records the modes it ran under."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.seen = (self.training, torch.is_inference_mode_enabled())
        return x


class _Roll(nn.Module):
    """Shifts the image one pixel to the right: not equivariant under flips/rotations."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.roll(x, 1, dims=-1)


def _skimage_scores(clean: np.ndarray, restored: np.ndarray) -> tuple[float, float]:
    clean8, restored8 = to_uint8(clean), to_uint8(restored)
    psnr = peak_signal_noise_ratio(clean8, restored8, data_range=255)
    ssim = structural_similarity(
        clean8,
        restored8,
        data_range=255,
        gaussian_weights=True,
        sigma=1.5,
        use_sample_covariance=False,
        channel_axis=-1,
    )
    return psnr, ssim


def test_protocol_hash_is_stable_12_hex_and_tracks_the_protocol(monkeypatch):
    first = protocol_hash()
    assert re.fullmatch(r"[0-9a-f]{12}", first)
    assert protocol_hash() == first
    monkeypatch.setitem(evaluation.PROTOCOL, "average", "median over images")
    assert protocol_hash() != first


def test_to_uint8_clips_and_rounds():
    x = np.array([-0.2, 0.0, 0.4 / 255, 0.6 / 255, 128.4 / 255, 128.6 / 255, 1.0, 1.3])
    result = to_uint8(x)
    assert result.dtype == np.uint8
    assert result.tolist() == [0, 0, 0, 1, 128, 129, 255, 255]


def test_identity_model_scores_the_quantised_noisy_input():
    images = [_image("a"), _image("bb")]
    result = evaluate_images(nn.Identity(), images, "sigma25", "cpu")
    expected = [
        _skimage_scores(i.pixels, degrade_for_test(i.pixels, i.name, "sigma25")) for i in images
    ]
    assert result["psnr"] == pytest.approx(np.mean([psnr for psnr, _ in expected]), abs=1e-9)
    assert result["ssim"] == pytest.approx(np.mean([ssim for _, ssim in expected]), abs=1e-9)
    assert 18 < result["psnr"] < 25  # sigma 25 noise is about 20.2 dB before clipping


def test_colour_image_uses_all_channels():
    image = _image("colour", channels=3)
    result = evaluate_images(nn.Identity(), [image], "sigma25", "cpu")
    noisy = degrade_for_test(image.pixels, image.name, "sigma25")
    psnr, ssim = _skimage_scores(image.pixels, noisy)
    assert (result["psnr"], result["ssim"]) == pytest.approx((psnr, ssim), abs=1e-9)


@pytest.mark.filterwarnings("ignore:divide by zero:RuntimeWarning")  # skimage PSNR of equal images
def test_oracle_and_one_level_off_oracle():
    image = _image("oracle")
    perfect = evaluate_images(_Constant(image.pixels), [image], "sigma25", "cpu")
    one_level = evaluate_images(_Constant(image.pixels + 1 / 255), [image], "sigma25", "cpu")
    assert perfect["ssim"] == pytest.approx(1.0) and perfect["psnr"] == np.inf
    assert one_level["psnr"] == pytest.approx(20 * np.log10(255), abs=1e-9)  # error of 1 level


def test_x8_of_identity_equals_plain_and_keys():
    image = _image("rect", height=24, width=32)
    result = evaluate_images(nn.Identity(), [image], "sigma25", "cpu", self_ensemble=True)
    assert set(result) == {"psnr", "ssim", "psnr_x8", "ssim_x8"}
    assert result["psnr_x8"] == pytest.approx(result["psnr"], abs=1e-9)
    assert result["ssim_x8"] == pytest.approx(result["ssim"], abs=1e-9)


def test_x8_inverts_each_transform():
    noisy = np.random.default_rng(0).random((12, 16, 1), dtype=np.float32)
    x8 = denoise_image(_Roll(), noisy, "cpu", self_ensemble=True)
    shifts = [np.roll(noisy, step, axis=axis) for step in (1, -1) for axis in (0, 1)]
    np.testing.assert_allclose(x8, np.mean(shifts, axis=0), atol=1e-6)
    plain = denoise_image(_Roll(), noisy, "cpu")
    np.testing.assert_array_equal(plain, np.roll(noisy, 1, axis=1))


def test_eval_mode_inference_mode_and_training_flag_restored():
    model = _Recorder()
    model.train()
    evaluate_images(model, [_image("a")], "sigma25", "cpu")
    assert model.seen == (False, True)
    assert model.training


def test_evaluate_sets_flat_keys():
    sets = {"set12": [_image("a")], "tiny": [_image("b"), _image("cc", channels=1)]}
    metrics = evaluate_sets(nn.Identity(), sets, ["sigma25", "q10"], "cpu", self_ensemble=True)
    expected = {
        f"{set_name}/{key}/{metric}"
        for set_name in sets
        for key in ("sigma25", "q10")
        for metric in ("psnr", "ssim", "psnr_x8", "ssim_x8")
    }
    assert set(metrics) == expected
    assert all(isinstance(value, float) and np.isfinite(value) for value in metrics.values())
    assert metrics["set12/q10/psnr"] != metrics["set12/sigma25/psnr"]


def test_no_images_is_an_error():
    with pytest.raises(ValueError, match="no images"):
        evaluate_images(nn.Identity(), [], "sigma25", "cpu")
