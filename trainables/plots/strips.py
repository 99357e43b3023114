"""A few denoised crops for the eye: noisy | denoised | clean strips as PNG bytes."""

from __future__ import annotations

import io

import numpy as np
import torch
from PIL import Image

from trainables.data import NamedImage, keys_for, test_input
from trainables.loops import denoise_image, to_uint8


def centre(pixels: np.ndarray, size: int) -> np.ndarray:
    height, width = pixels.shape[:2]
    top, left = max(0, (height - size) // 2), max(0, (width - size) // 2)
    return pixels[top : top + size, left : left + size]


def sample_strip(model, image: NamedImage, key: str, device: torch.device,
                 size: int = 128) -> bytes:
    """PNG of [noisy | denoised | clean] on a centre crop, with the protocol's test input."""
    noisy, clean = centre_pair(image, key, size)  # (h, w, C) each
    restored = denoise_image(model, noisy, device)
    strip = np.concatenate([to_uint8(x) for x in (noisy, restored, clean)], axis=1)
    strip = strip[..., 0] if strip.shape[-1] == 1 else strip
    buffer = io.BytesIO()
    Image.fromarray(strip).save(buffer, format="PNG")
    return buffer.getvalue()


def centre_pair(image: NamedImage, key: str, size: int) -> tuple[np.ndarray, np.ndarray]:
    """(noisy, clean) centre crops: a pair's own noisy image for `real`, else the protocol's
    test input drawn on the crop."""
    noisy = test_input(image, key, crop=lambda pixels: centre(pixels, size))
    return noisy, np.ascontiguousarray(centre(image.pixels, size))


def sample_strips(model, test_sets: dict[str, list[NamedImage]], keys: list[str],
                  device: torch.device, per_set: int = 2) -> dict[str, bytes]:
    """Artifact path -> PNG bytes for the first `per_set` images of every test set and key
    (`real` for a paired set)."""
    return {
        f"samples/{set_name}/{image.name}_{key}.png": sample_strip(model, image, key, device)
        for set_name, images in test_sets.items()
        for image in images[:per_set]
        for key in keys_for(images, keys)
    }
