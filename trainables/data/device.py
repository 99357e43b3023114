"""Training patches made on the trial's device: the same items as `PatchDataset`, with the
pixel work (crop, rescale, dihedral transform, noise) done by torch where the network runs.

The training images are copied to the device once per trial, as uint8 when their values are
exactly k / 255 (8-bit files, as most training sets are), else as float32. Each item draws
its random choices from the same generator as the numpy reference
(`np.random.default_rng([seed, epoch, index])`, in the same order: image, window, rescale,
dihedral variant, noise level), so an item is a pure function of (seed, epoch, index) and
the same image, window and variant as the reference's; then:

- crop and dihedral transform: equal to the reference's, value for value;
- rescale: torch's antialiased bicubic (`F.interpolate(..., antialias=True)`, the Keys
  kernel with a = -0.5 that Pillow uses), clipped to [0, 1] as the reference clips
  Pillow's; equal to it up to float rounding;
- AWGN: drawn by a torch generator seeded from (seed, epoch, index) through
  `np.random.SeedSequence`, so the noise has the reference's distribution (N(0, (sigma /
  255)^2) per pixel, independent across pixels and items) but not its values (drawing
  numpy's values would mean making them on the CPU);
- JPEG: compressed by Pillow on the CPU, as the reference does (no device codec), the
  patch copied back to the device.

A real-noise pair's noisy image is stored beside its clean one and cut the same way.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from trainables.data.augment import crop_window, draw_variant, scaled_window
from trainables.data.degradations import jpeg_roundtrip
from trainables.data.patches import PatchDataset

NOISE_STREAM = 1  # SeedSequence([seed, epoch, index, NOISE_STREAM]): the item's noise seed


@dataclass(frozen=True)
class ItemDraw:
    """The random choices of one training item."""

    image: int
    side: int  # the window's side before the resize (the patch size without one)
    top: int
    left: int
    resized: bool
    variant: int  # dihedral variant, 0 (identity) without augmentation
    level: float | None  # noise sigma or JPEG quality; None: a pair's own noise


def stored(pixels: np.ndarray, device: torch.device) -> torch.Tensor:
    """(H, W, C) float32 in [0, 1] -> (C, H, W) on `device`: uint8 when every value is exactly
    k / 255, else float32."""
    values = np.round(pixels * 255)
    exact = np.array_equal(values.astype(np.float32) / np.float32(255), pixels)
    array = values.astype(np.uint8) if exact else pixels.astype(np.float32, copy=False)
    return torch.from_numpy(np.ascontiguousarray(array.transpose(2, 0, 1))).to(device)


def as_float(crop: torch.Tensor) -> torch.Tensor:
    """Stored values -> float32 in [0, 1] (uint8: exactly value / 255, as the reference)."""
    return crop.float() / 255 if crop.dtype == torch.uint8 else crop


class DevicePatches:
    """Batches of (noisy, clean), each (B, C, P, P) float32 on `device`, for the items of
    `dataset` (its images, seed, patch size, augmentation, rescale and degradation)."""

    def __init__(self, dataset: PatchDataset, device: torch.device | str):
        self.dataset, self.device = dataset, torch.device(device)
        self.clean = [stored(image.pixels, self.device) for image in dataset.images]
        self.noisy = [None if image.noisy is None else stored(image.noisy, self.device)
                      for image in dataset.images]
        self.generator = torch.Generator(device=self.device)

    def draw(self, epoch: int, index: int) -> ItemDraw:
        """Item `index`'s choices, from the reference's generator in the reference's order."""
        data = self.dataset
        rng = np.random.default_rng([data.seed, epoch, index])
        which = data.image_index_at(epoch, index, rng)
        height, width = data.images[which].pixels.shape[:2]
        if data.rescale is not None:
            side, top, left, resized = scaled_window(height, width, data.patch_size, rng,
                                                     *data.rescale)
        else:
            side, (top, left), resized = data.patch_size, \
                crop_window(height, width, data.patch_size, rng), False
        variant = draw_variant(rng) if data.augment else 0
        paired = data.images[which].noisy is not None
        level = None if paired else data.degradation.draw_level(rng)
        return ItemDraw(which, side, top, left, resized, variant, level)

    def cut(self, image: torch.Tensor, draw: ItemDraw) -> torch.Tensor:
        """The item's (C, P, P) float32 patch of one stored image."""
        size = self.dataset.patch_size
        crop = as_float(image[:, draw.top:draw.top + draw.side, draw.left:draw.left + draw.side])
        if draw.resized:
            crop = F.interpolate(crop[None], size=(size, size), mode="bicubic",
                                 align_corners=False, antialias=True)[0].clamp(0, 1)
        return dihedral(crop, draw.variant)

    def item(self, epoch: int, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        """(noisy, clean) of item `index` in `epoch`, each (C, P, P)."""
        draw = self.draw(epoch, index)
        clean = self.cut(self.clean[draw.image], draw)
        if draw.level is None:
            return self.cut(self.noisy[draw.image], draw), clean
        return self.degrade(clean, draw.level, epoch, index), clean

    def degrade(self, clean: torch.Tensor, level: float, epoch: int,
                index: int) -> torch.Tensor:
        if self.dataset.degradation.kind == "jpeg":  # Pillow's codec, on the CPU
            patch = clean.permute(1, 2, 0).cpu().numpy()  # (P, P, C)
            degraded = jpeg_roundtrip(patch, int(level)).transpose(2, 0, 1)
            return torch.from_numpy(np.ascontiguousarray(degraded)).to(self.device)
        self.generator.manual_seed(noise_seed(self.dataset.seed, epoch, index))
        noise = torch.randn(clean.shape, generator=self.generator, device=self.device)
        return clean + noise * np.float32(level / 255)

    def batches(self, epoch: int, batch_size: int) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """The epoch's complete batches of consecutive items (as the reference's loader,
        which drops an incomplete last batch)."""
        count = self.dataset.samples_per_epoch // batch_size
        for start in range(0, count * batch_size, batch_size):
            pairs = [self.item(epoch, index) for index in range(start, start + batch_size)]
            yield torch.stack([n for n, _ in pairs]), torch.stack([c for _, c in pairs])


def dihedral(patch: torch.Tensor, variant: int) -> torch.Tensor:
    """`trainables.data.augment.dihedral` on a (C, H, W) tensor: rotate by (variant % 4) * 90
    degrees, then flip the width axis when variant >= 4."""
    rotated = torch.rot90(patch, variant % 4, dims=(1, 2))
    return rotated.flip(2) if variant >= 4 else rotated


def noise_seed(seed: int, epoch: int, index: int) -> int:
    """The item's noise generator seed: a pure function of (seed, epoch, index)."""
    state = np.random.SeedSequence([seed, epoch, index, NOISE_STREAM]).generate_state(2)
    return int(state[0]) << 31 ^ int(state[1])
