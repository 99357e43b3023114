"""Random training patches: (noisy, clean) pairs drawn on the fly (HiNAS: Zhang et al.,
IJCV 2022, Sec. 4.1).

Item i of epoch e is a pure function of (seed, e, i): its generator is
`np.random.default_rng([seed, e, i])`, so results do not depend on worker
count, batch order or what was drawn before. Each item picks an image
uniformly (one image, one chance, as in the KAIR and HiNAS loaders; not
weighted by area), or, with `cover` (`search.epoch: images`), takes the images in a
random order fixed per epoch, each once (wrapping round when the epoch's batches ask for
more items than there are images), as the HiNAS code's shuffled DataLoader does
(`data/build_dataset.py`); then it crops it (optionally with a random rescale), applies one
of the 8 dihedral transforms and degrades it. A real-noise pair
(`trainables.data.paired`) is not degraded: its noisy image gets the same crop,
rescale and transform as its clean one, with the same draws.

With `num_workers > 0`, call `set_epoch` before iterating and keep
`persistent_workers` off, so workers copy the dataset with the new epoch.
"""

from __future__ import annotations

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from trainables.data.augment import RESCALE_RANGE, random_crop, random_scaled_crop
from trainables.data.augment import augment as dihedral_augment
from trainables.data.datasets import check_patch_size
from trainables.data.degradations import Degradation
from trainables.data.images import NamedImage
from trainables.data.paired import same_draws


class PatchDataset(Dataset):
    """`samples_per_epoch` random (noisy, clean) patches, each (C, P, P) float32."""

    def __init__(
        self,
        images: list[NamedImage],
        patch_size: int,
        degradation: Degradation,
        samples_per_epoch: int,
        seed: int,
        augment: bool = True,
        rescale: tuple[float, float] | bool | None = None,  # True: RESCALE_RANGE
        cover: bool = False,
    ) -> None:
        if not images:
            raise ValueError("PatchDataset needs at least one image")
        if samples_per_epoch < 1:
            raise ValueError(f"samples_per_epoch must be positive, got {samples_per_epoch}")
        check_patch_size(images, patch_size)
        self.images = images
        self.patch_size = patch_size
        self.degradation = degradation
        self.samples_per_epoch = samples_per_epoch
        self.seed = seed
        self.augment = augment
        self.rescale = RESCALE_RANGE if rescale is True else (rescale or None)
        self.cover = cover
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return self.samples_per_epoch

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        if not 0 <= index < self.samples_per_epoch:
            raise IndexError(f"patch index {index} out of range {self.samples_per_epoch}")
        rng = np.random.default_rng([self.seed, self.epoch, index])
        image = self.images[self.image_index_at(self.epoch, index, rng)]
        if image.noisy is not None:
            clean, noisy = same_draws(self.patch, rng, image.pixels, image.noisy)  # (P, P, C)
        else:
            clean = self.patch(image.pixels, rng)  # (P, P, C)
            noisy = self.degradation.apply(clean, rng)  # (P, P, C)
        return to_tensor(noisy), to_tensor(clean)

    def image_index_at(self, epoch: int, index: int, rng: np.random.Generator) -> int:
        """The image of item `index` of `epoch`: drawn uniformly, or (`cover`) the epoch's
        permutation."""
        if not self.cover:
            return int(rng.integers(len(self.images)))
        order = np.random.default_rng([self.seed, epoch]).permutation(len(self.images))
        return int(order[index % len(self.images)])

    def patch(self, pixels: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """Crop (and maybe rescale) an (H, W, C) image, and maybe transform it: (P, P, C)."""
        if self.rescale is not None:
            low, high = self.rescale
            patch = random_scaled_crop(pixels, self.patch_size, rng, low, high)
        else:
            patch = random_crop(pixels, self.patch_size, rng)
        return dihedral_augment(patch, rng) if self.augment else patch


def to_tensor(array: np.ndarray) -> torch.Tensor:
    """(H, W, C) numpy -> (C, H, W) contiguous float32 tensor."""
    return torch.from_numpy(np.ascontiguousarray(array.transpose(2, 0, 1), dtype=np.float32))


def make_loader(
    dataset: PatchDataset,
    batch_size: int,
    num_workers: int = 0,
    shuffle: bool = False,
    pin_memory: bool = False,
) -> DataLoader:
    """Batches of (noisy, clean), each (B, C, P, P); incomplete last batches are dropped.

    Items are already random, so no shuffle is needed; if asked, the shuffle
    order is seeded from the dataset seed to stay deterministic.
    """
    if batch_size > len(dataset):
        raise ValueError(f"batch size {batch_size} exceeds the {len(dataset)} samples per epoch")
    generator = torch.Generator().manual_seed(dataset.seed) if shuffle else None
    return DataLoader(
        dataset,
        batch_size=batch_size,
        shuffle=shuffle,
        num_workers=num_workers,
        pin_memory=pin_memory,
        drop_last=True,
        generator=generator,
    )
