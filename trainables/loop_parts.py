"""Pieces shared by the search and retrain loops: batches, validation, checkpoints of state."""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Iterator
from typing import Any, Protocol

import numpy as np
import torch

from trainables.degradations import Degradation
from trainables.devices import Runtime
from trainables.evaluation import evaluate_images
from trainables.images import NamedImage
from trainables.paired import keys_for
from trainables.patches import PatchDataset, make_loader


class Reporter(Protocol):
    """Called once per epoch by a training loop; the Ray adapter logs and checkpoints."""

    def __call__(self, epoch: int, metrics: dict[str, float], state: dict[str, Any]) -> None: ...


def noise_spec_dict(noise: Any) -> dict[str, Any]:
    """The degradation spec of trainables.degradations from a NoiseSpec (or its dict)."""
    spec = noise if isinstance(noise, dict) else noise.model_dump()
    return {key: value for key, value in spec.items() if value is not None}


def validation_keys(noise: Any) -> list[str]:
    """Fixed levels to validate at: the listed levels, or the middle of a blind range."""
    keys = noise.test_keys()
    if keys:
        return keys
    low, high = noise.sigma_range
    return [f"sigma{round((low + high) / 2):g}"]


def centre_crop(images: list[NamedImage], size: int | None) -> list[NamedImage]:
    """Validation images cropped to at most `size` x `size` (speed on the search supernet);
    a pair's noisy image the same way."""
    if size is None:
        return images
    cropped = []
    for image in images:
        height, width = image.pixels.shape[:2]
        top, left = max(0, (height - size) // 2), max(0, (width - size) // 2)
        window = (slice(top, top + size), slice(left, left + size))
        noisy = None if image.noisy is None else np.ascontiguousarray(image.noisy[window])
        pixels = np.ascontiguousarray(image.pixels[window])
        cropped.append(dataclasses.replace(image, pixels=pixels, noisy=noisy))
    return cropped


def patch_batches(
    images: list[NamedImage],
    data: Any,
    batch_size: int,
    steps: int,
    seed: int,
    num_workers: int,
    noise: Any | None = None,
    pin_memory: bool = False,
    cover: bool = False,
) -> Callable[[int], Iterator[tuple[torch.Tensor, torch.Tensor]]]:
    """A function epoch -> iterator over `steps` (noisy, clean) batches, reproducible per epoch.
    `pin_memory` (for CUDA) lets `to_device` copy them asynchronously; `cover` crops every
    image once per epoch (`search.epoch: images`)."""
    dataset = PatchDataset(
        images,
        patch_size=data.patch_size,
        degradation=Degradation.from_spec(noise_spec_dict(noise or data.noise)),
        samples_per_epoch=steps * batch_size,
        seed=seed,
        augment=data.augment,
        rescale=data.rescale,
        cover=cover,
    )
    loader = make_loader(dataset, batch_size, num_workers=num_workers, pin_memory=pin_memory)

    def epoch_batches(epoch: int) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        dataset.set_epoch(epoch)
        return iter(loader)

    return epoch_batches


def to_device(batch: tuple[torch.Tensor, ...], runtime: Runtime,
              memory_format: torch.memory_format = torch.preserve_format
              ) -> tuple[torch.Tensor, ...]:
    return tuple(t.to(runtime.device, non_blocking=runtime.non_blocking,
                      memory_format=memory_format) for t in batch)


def validate(model, images: list[NamedImage], keys: list[str], runtime: Runtime) -> dict:
    """Mean PSNR/SSIM over images and levels (`real` for paired images), and the HiNAS
    score SSIM + PSNR/100."""
    results = [evaluate_images(model, images, key, runtime.device)
               for key in keys_for(images, keys)]
    psnr = float(np.mean([r["psnr"] for r in results]))
    ssim = float(np.mean([r["ssim"] for r in results]))
    return {"val/psnr": psnr, "val/ssim": ssim, "val/score": ssim + psnr / 100}


GPU_CHECK_EVERY = 20  # steps between divergence checks on a GPU (each check waits for it)


def stop_if_diverged(running_loss: torch.Tensor, step: int, runtime) -> None:
    """Stop a trial as soon as its running loss is not finite: checked every step on the CPU
    (free), every GPU_CHECK_EVERY steps on a GPU (a check synchronises with the device)."""
    every = 1 if runtime.device.type == "cpu" else GPU_CHECK_EVERY
    if step % every == 0 and not bool(torch.isfinite(running_loss)):
        raise FloatingPointError(f"train/loss is not finite (nan or inf) at step {step} of the "
                                 "epoch; lower the learning rate")


def finite_or_raise(value: float, what: str) -> float:
    if not math.isfinite(value):
        raise FloatingPointError(f"{what} is not finite ({value}); lower the learning rate")
    return value
