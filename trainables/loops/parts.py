"""Pieces shared by the search and retrain loops: batches, validation, checkpoints of state."""

from __future__ import annotations

import dataclasses
import math
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from typing import Any, Protocol

import numpy as np
import torch

from trainables.data import (
    Degradation,
    DevicePatches,
    NamedImage,
    PatchDataset,
    keys_for,
    make_loader,
)
from trainables.loops.devices import Runtime
from trainables.loops.evaluation import evaluate_images


class Reporter(Protocol):
    """Called once per epoch by a training loop; the Ray adapter logs and checkpoints."""

    def __call__(self, epoch: int, metrics: dict[str, float], state: dict[str, Any]) -> None: ...


def noise_spec_dict(noise: Any) -> dict[str, Any]:
    """The degradation spec of trainables.data.degradations from a NoiseSpec (or its dict)."""
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
    device: torch.device | None = None,
) -> Callable[[int], Iterator[tuple[torch.Tensor, torch.Tensor]]]:
    """A function epoch -> iterator over `steps` (noisy, clean) batches, reproducible per epoch.
    With `device` and `data.pipeline` "device", torch makes them there
    (`trainables.data.device`); else numpy on the CPU, where `pin_memory` (for CUDA) lets
    `to_device` copy them asynchronously. `cover` crops every image once per epoch
    (`search.epoch: images`)."""
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
    if device is not None and getattr(data, "pipeline", "numpy") == "device":
        patches = DevicePatches(dataset, device)
        return lambda epoch: patches.batches(epoch, batch_size)
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


class StepClock:
    """Where an epoch's training loop spends its time: making batches and moving them to the
    device (`time/data_s`), and the steps (`time/compute_s`: the loop's time less the data's
    and less what ran `aside`, such as validations between steps). On a GPU the clock waits
    for the device at the epoch's end, so queued work counts as compute."""

    def __init__(self, runtime: Runtime,
                 memory_format: torch.memory_format = torch.preserve_format):
        self.runtime, self.memory_format = runtime, memory_format
        self.start()

    def start(self) -> None:
        self.began, self.data_s, self.aside_s = time.perf_counter(), 0.0, 0.0

    def timed(self, batches: Iterable[tuple[torch.Tensor, ...]]
              ) -> Iterator[tuple[torch.Tensor, ...]]:
        """`batches` on the device, the time to make and move each counted as data."""
        iterator = iter(batches)
        while True:
            began = time.perf_counter()
            batch = next(iterator, None)
            if batch is None:
                return
            batch = to_device(batch, self.runtime, self.memory_format)
            self.data_s += time.perf_counter() - began
            yield batch

    def timing(self, batches: Callable[[int], Iterable]) -> Callable[[int], Iterator]:
        """`patch_batches`'s epoch -> batches, timed."""
        return lambda epoch: self.timed(batches(epoch))

    def apart(self, call: Callable[..., Any]) -> Callable[..., Any]:
        """`call`, its time not counted as compute."""
        def timed_apart(*args, **kwargs):
            with self.aside():
                return call(*args, **kwargs)
        return timed_apart

    @contextmanager
    def aside(self) -> Iterator[None]:
        began = time.perf_counter()
        try:
            yield
        finally:
            self.aside_s += time.perf_counter() - began

    def metrics(self) -> dict[str, float]:
        if self.runtime.device.type == "cuda":
            torch.cuda.synchronize(self.runtime.device)
        loop = time.perf_counter() - self.began
        return {"time/data_s": self.data_s,
                "time/compute_s": max(0.0, loop - self.data_s - self.aside_s)}


def validate(model, images: list[NamedImage], keys: list[str], runtime: Runtime) -> dict:
    """Mean PSNR/SSIM over images and levels (`real` for paired images), and the HiNAS
    score SSIM + PSNR/100."""
    results = [evaluate_images(model, images, key, runtime.device)
               for key in keys_for(images, keys)]
    psnr = float(np.mean([r["psnr"] for r in results]))
    ssim = float(np.mean([r["ssim"] for r in results]))
    return {"val/psnr": psnr, "val/ssim": ssim, "val/score": ssim + psnr / 100}


GPU_CHECK_EVERY = 20  # steps between divergence checks on a GPU (each check waits for it)
SMOOTHING = 0.1  # weight of a step's loss in the running mean the guard watches


class DivergenceGuard:
    """Fails a trial whose training loss diverges: not finite, or a running mean (an
    exponential average of the per-step losses, weight SMOOTHING) that has grown to more
    than `factor` times its running minimum. A loss can explode and stay finite: the HiNAS
    code's retraining step (SGD 0.05, momentum 0.9; hkzhang91/HiNAS `engine/trainer.py`)
    at batch 8 of 32 x 32 climbs from about 0.1 to 1e4-1e6 within 50 steps and never turns
    NaN, and the network it leaves scores below its noisy input. Checked every step on the
    CPU (free), every GPU_CHECK_EVERY steps on a GPU (a check synchronises with the device).
    The running mean and minimum travel in the trial's checkpoint (`state`), so a resumed
    trial watches on from where it stopped. `field` names the study key in the message."""

    def __init__(self, factor: float | None, runtime, field: str,
                 state: dict[str, float] | None = None):
        self.factor, self.field, self.device = factor, field, runtime.device
        self.every = 1 if runtime.device.type == "cpu" else GPU_CHECK_EVERY
        self.mean: torch.Tensor | None = None
        self.low: torch.Tensor | None = None
        self.load(state)

    def load(self, state: dict[str, float | None] | None) -> None:
        """Restore `state()` (None or an empty state: nothing seen yet)."""
        if state and state.get("mean") is not None:
            self.mean = torch.tensor(state["mean"], device=self.device)
            self.low = torch.tensor(state["low"], device=self.device)

    def state(self) -> dict[str, float | None]:
        if self.mean is None:
            return {"mean": None, "low": None}
        return {"mean": float(self.mean), "low": float(self.low)}

    def update(self, loss: torch.Tensor, step: int) -> None:
        """Take one step's loss (a 0-d tensor); raise FloatingPointError on divergence."""
        loss = loss.detach().float()
        if self.mean is None:
            self.mean, self.low = loss.clone(), loss.clone()
        else:
            self.mean.mul_(1 - SMOOTHING).add_(loss, alpha=SMOOTHING)
            torch.minimum(self.low, self.mean, out=self.low)
        if step % self.every:
            return
        mean, low = self.state().values()
        if not math.isfinite(mean):
            raise FloatingPointError(f"train/loss is not finite (nan or inf) at step {step} of "
                                     "the epoch; lower the learning rate")
        if self.factor is not None and low > 0 and mean > self.factor * low:
            raise FloatingPointError(
                f"train/loss diverged at step {step} of the epoch: its running mean {mean:.3g} "
                f"is {mean / low:.3g} x its running minimum {low:.3g} (over {self.field} "
                f"{self.factor:g}); lower the learning rate or warm it up (optimizer."
                "warmup_steps), or set the factor to null to train on")


def finite_or_raise(value: float, what: str) -> float:
    if not math.isfinite(value):
        raise FloatingPointError(f"{what} is not finite ({value}); lower the learning rate")
    return value
