"""The test-time evaluation protocol shared by every method.

One noisy input per (image, degradation key) from
`trainables.data.degradations.degrade_for_test` (AWGN drawn as the DnCNN / KAIR test
scripts draw it: legacy numpy generator seeded 0 per image), never clipped; the whole
image goes through the network; the output is clipped to [0, 1] and rounded to
8 bits as in the DnCNN / FFDNet / KAIR evaluations; PSNR and SSIM (Wang et al.,
"Image Quality Assessment: From Error Visibility to Structural Similarity", TIP
2004, Eq. 13 with an 11x11 Gaussian window, sigma 1.5) come from
`skimage.metrics` on the 8-bit images. The x8 self-ensemble (Timofte et al.,
"Seven Ways to Improve Example-Based Single Image Super Resolution", CVPR 2016)
averages the outputs over the 8 flips/rotations and is reported under separate
`*_x8` keys. `protocol_hash()` identifies this protocol in MLflow (`eval_protocol`).
A paired (real-noise) test set is evaluated at the level key `real` only, on its own
noisy images (`trainables.data.paired`); every other step is the same, and synthetic keys
are unchanged, so the hash is too.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

import numpy as np
import torch
from torch import nn

from trainables.data import keys_for, test_input

if TYPE_CHECKING:
    from trainables.data import NamedImage

PROTOCOL: dict = {
    "name": "whole-image-8bit",
    "version": 2,
    "noise": {
        "draws_per_image": 1,
        "function": "trainables.data.degradations.degrade_for_test",
        "keys": {"sigma<s>": "AWGN, sigma s / 255", "q<q>": "Pillow JPEG at quality q"},
        "seed": "0 for every image (DnCNN / FFDNet / KAIR test scripts)",
        "generator": "numpy.random.RandomState(0).normal(0, sigma / 255, shape), float64",
        "noisy_input_clipped": False,
    },
    "inference": {"mode": "whole_image", "tiling": None, "grad": "torch.inference_mode"},
    "output": {"clip": [0.0, 1.0], "quantise": "round(x * 255) as uint8"},
    "psnr": {"function": "skimage.metrics.peak_signal_noise_ratio", "data_range": 255},
    "ssim": {
        "function": "skimage.metrics.structural_similarity",
        "data_range": 255,
        "gaussian_weights": True,
        "sigma": 1.5,
        "use_sample_covariance": False,
        "channel_axis": "last axis for colour, none for grayscale",
    },
    "average": "mean over images",
    "self_ensemble": {"mode": "x8 dihedral (4 rotations x 2 flips), mean", "keys": "*_x8"},
}


def protocol_hash() -> str:
    """First 12 hex digits of the sha256 of the canonical JSON of `PROTOCOL`."""
    canonical = json.dumps(PROTOCOL, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()[:12]


def to_uint8(x: np.ndarray) -> np.ndarray:
    """Clip to [0, 1] and round to 8 bits: `round(x * 255)` (numpy rounds half to even)."""
    return np.round(np.clip(x, 0.0, 1.0) * 255.0).astype(np.uint8)


@contextmanager
def evaluation_mode(model: nn.Module) -> Iterator[nn.Module]:
    """Put `model` in eval mode for the block and restore its training flag afterwards."""
    was_training = model.training
    model.eval()
    try:
        yield model
    finally:
        model.train(was_training)


def _dihedral(x: torch.Tensor, index: int) -> torch.Tensor:
    """The `index`-th of the 8 dihedral transforms: rotate by (index % 4) * 90, then flip."""
    x = torch.rot90(x, index % 4, dims=(-2, -1))
    return torch.flip(x, dims=(-1,)) if index >= 4 else x


def _inverse_dihedral(x: torch.Tensor, index: int) -> torch.Tensor:
    x = torch.flip(x, dims=(-1,)) if index >= 4 else x
    return torch.rot90(x, -(index % 4), dims=(-2, -1))


def _self_ensemble(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    outputs = [_inverse_dihedral(model(_dihedral(x, index)), index) for index in range(8)]
    return torch.stack(outputs).mean(dim=0)  # (B, C, H, W)


def denoise_image(
    model: nn.Module,
    noisy: np.ndarray,
    device: torch.device | str,
    self_ensemble: bool = False,
) -> np.ndarray:
    """Run `model` on one whole (H, W, C) image; return the unclipped (H, W, C) float32 output."""
    x = torch.from_numpy(np.ascontiguousarray(noisy, dtype=np.float32))  # (H, W, C)
    x = x.permute(2, 0, 1).unsqueeze(0).to(device)  # (1, C, H, W)
    with evaluation_mode(model), torch.inference_mode():
        out = _self_ensemble(model, x) if self_ensemble else model(x)  # (1, C, H, W)
    return out[0].permute(1, 2, 0).float().cpu().numpy()  # (H, W, C)


def image_scores(clean: np.ndarray, restored: np.ndarray) -> tuple[float, float]:
    """PSNR and SSIM of two (H, W, C) images in [0, 1], both quantised to 8 bits first."""
    # imported here: scikit-image loads SciPy (0.7 s), which `validate` does not need
    from skimage.metrics import peak_signal_noise_ratio, structural_similarity

    clean8, restored8 = to_uint8(clean), to_uint8(restored)
    if clean8.shape[-1] == 1:
        clean8, restored8, channel_axis = clean8[..., 0], restored8[..., 0], None
    else:
        channel_axis = -1
    psnr = peak_signal_noise_ratio(clean8, restored8, data_range=255)
    ssim = structural_similarity(
        clean8,
        restored8,
        data_range=255,
        gaussian_weights=True,
        sigma=1.5,
        use_sample_covariance=False,
        channel_axis=channel_axis,
    )
    return float(psnr), float(ssim)


def evaluate_images(
    model: nn.Module,
    images: list[NamedImage],
    key: str,
    device: torch.device | str,
    self_ensemble: bool = False,
) -> dict[str, float]:
    """Mean PSNR/SSIM over `images` degraded by `key`; with `self_ensemble` also `*_x8`."""
    if not images:
        raise ValueError(f"no images to evaluate for key {key!r}")
    suffixes = ["", "_x8"] if self_ensemble else [""]
    scores: dict[str, list[float]] = {f"{m}{s}": [] for s in suffixes for m in ("psnr", "ssim")}
    for image in images:
        noisy = test_input(image, key)  # (H, W, C)
        for suffix in suffixes:
            restored = denoise_image(model, noisy, device, self_ensemble=suffix == "_x8")
            psnr, ssim = image_scores(image.pixels, restored)
            scores[f"psnr{suffix}"].append(psnr)
            scores[f"ssim{suffix}"].append(ssim)
    return {name: float(np.mean(values)) for name, values in scores.items()}


def evaluate_sets(
    model: nn.Module,
    sets: dict[str, list[NamedImage]],
    keys: list[str],
    device: torch.device | str,
    self_ensemble: bool = False,
) -> dict[str, float]:
    """Flat metrics over every (set, key): `"{set}/{key}/psnr"`, `".../ssim"`, `".../psnr_x8"`...
    A paired set is evaluated at `real` instead of `keys`."""
    metrics: dict[str, float] = {}
    for set_name, images in sets.items():
        for key in keys_for(images, keys):
            result = evaluate_images(model, images, key, device, self_ensemble)
            metrics.update({f"{set_name}/{key}/{name}": value for name, value in result.items()})
    return metrics
