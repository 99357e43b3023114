"""Training augmentation on (H, W, C) float arrays, as in the HiNAS code (hkzhang91/HiNAS,
`one_stage_nas/data/datasets/transforms.py`).

Random crop, the 8 dihedral transforms (rotation by k*90 degrees, optional
horizontal flip), and an optional random bicubic rescale by 0.8-1.2 (p=0.5).
Resizing uses Pillow's bicubic filter on float32 planes (mode "F"), so nothing
is quantised; the bicubic overshoot is clipped back to [0, 1] so clean targets
stay in range.
"""

from __future__ import annotations

import math

import numpy as np
from PIL import Image

NUM_DIHEDRAL = 8
RESCALE_RANGE = (0.8, 1.2)  # HiNAS code: RandomRescaleCrop(scale=[0.8, 1.2], prob=0.5)


def dihedral(array: np.ndarray, variant: int) -> np.ndarray:
    """Dihedral transform `variant` in 0..7: rotate by (variant % 4) * 90, then flip if >= 4."""
    rotated = np.rot90(array, variant % 4, axes=(0, 1))  # (H, W, C) or (W, H, C)
    return rotated[:, ::-1] if variant >= 4 else rotated


def draw_variant(rng: np.random.Generator) -> int:
    """A dihedral variant, uniformly (one draw)."""
    return int(rng.integers(NUM_DIHEDRAL))


def augment(patch: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """One of the 8 dihedral variants of an (H, W, C) patch, uniformly, as a contiguous copy."""
    return np.ascontiguousarray(dihedral(patch, draw_variant(rng)))


def crop_window(height: int, width: int, size: int, rng: np.random.Generator) -> tuple[int, int]:
    """(top, left) of a uniformly placed size x size window (two draws: top, then left)."""
    if size > height or size > width:
        raise ValueError(f"crop {size}x{size} does not fit an image of {height}x{width}")
    return int(rng.integers(height - size + 1)), int(rng.integers(width - size + 1))


def random_crop(image: np.ndarray, size: int, rng: np.random.Generator) -> np.ndarray:
    """A uniformly placed (size, size, C) crop, copied."""
    top, left = crop_window(*image.shape[:2], size, rng)
    return image[top : top + size, left : left + size].copy()  # (size, size, C)


def resize_bicubic(image: np.ndarray, height: int, width: int) -> np.ndarray:
    """(H, W, C) -> (height, width, C) float32, bicubic per channel, clipped to [0, 1]."""
    planes = [_resize_plane(image[:, :, c], height, width) for c in range(image.shape[2])]
    return np.clip(np.stack(planes, axis=2), 0, 1)  # (height, width, C)


def _resize_plane(plane: np.ndarray, height: int, width: int) -> np.ndarray:
    """(H, W) -> (height, width) float32 via a Pillow mode "F" image."""
    image = Image.fromarray(np.ascontiguousarray(plane, dtype=np.float32))  # mode "F"
    return np.asarray(image.resize((width, height), Image.Resampling.BICUBIC))


def random_rescale(
    image: np.ndarray,
    rng: np.random.Generator,
    low: float = 0.8,
    high: float = 1.2,
    p: float = 0.5,
) -> np.ndarray:
    """With probability `p`, resize the whole image by a factor drawn uniformly in [low, high]."""
    if rng.random() >= p:
        return image
    scale = rng.uniform(low, high)
    height, width = image.shape[:2]
    return resize_bicubic(image, max(1, round(height * scale)), max(1, round(width * scale)))


def scaled_window(
    height: int,
    width: int,
    size: int,
    rng: np.random.Generator,
    low: float = 0.8,
    high: float = 1.2,
    p: float = 0.5,
) -> tuple[int, int, int, bool]:
    """(side, top, left, resized) of `random_scaled_crop`'s window: with probability `p` a
    square of side size / scale (scale uniform in [low, high], the side capped by the image)
    that is then resized to size x size, else a plain size x size crop."""
    if rng.random() >= p:
        return (size, *crop_window(height, width, size, rng), False)
    scale = rng.uniform(low, high)
    side = min(math.ceil(size / scale), height, width)
    return (side, *crop_window(height, width, side, rng), True)


def random_scaled_crop(
    image: np.ndarray,
    size: int,
    rng: np.random.Generator,
    low: float = 0.8,
    high: float = 1.2,
    p: float = 0.5,
) -> np.ndarray:
    """A (size, size, C) crop of the image rescaled as by `random_rescale`.

    Cheap equivalent of rescale-then-crop: crop a square of side size / scale
    and resize only that. The side is capped by the image, so a small image
    is never upscaled past its borders.
    """
    side, top, left, resized = scaled_window(*image.shape[:2], size, rng, low, high, p)
    crop = image[top : top + side, left : left + side].copy()  # (side, side, C)
    return resize_bicubic(crop, size, size) if resized else crop
