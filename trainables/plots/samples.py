"""plots/samples.png of a retrain run: centre crops of a few test images, noisy | denoised
| clean, each titled with its PSNR against the clean crop (the protocol's test input of
`trainables/loops/evaluation.py`, quantised to 8 bits as the test metrics are)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from matplotlib.figure import Figure

from trainables.data import NamedImage, keys_for
from trainables.loops import denoise_image, image_scores, to_uint8
from trainables.plots.canvas import message, render
from trainables.plots.strips import centre_pair

CROP = 96  # pixels per side
PANEL_INCHES = 2.4


@dataclass(frozen=True)
class Sample:
    name: str  # "<set>/<image> <key>"
    noisy: np.ndarray  # (h, w, C) in [0, 1], unclipped
    denoised: np.ndarray
    clean: np.ndarray


def make_samples(model, images: dict[str, list[NamedImage]], keys: list[str],
                 device: torch.device | str, per_key: int = 2) -> list[Sample]:
    """The first `per_key` images of the first set at each of the first two keys."""
    set_name, chosen = next(iter(images.items()), ("", []))
    samples = []
    for key in keys_for(chosen, keys)[:2]:
        for image in chosen[:per_key]:
            noisy, clean = centre_pair(image, key, CROP)  # (h, w, C) each
            denoised = denoise_image(model, noisy, device)
            samples.append(Sample(f"{set_name}/{image.name} {key}", noisy, denoised, clean))
    return samples


def shown(pixels: np.ndarray) -> np.ndarray:
    eight_bit = to_uint8(pixels)
    return eight_bit[..., 0] if eight_bit.shape[-1] == 1 else eight_bit


def draw_samples(figure: Figure, samples: list[Sample]) -> None:
    if not samples:
        message(figure, "no test images")
        return
    grid = figure.subplots(len(samples), 3, squeeze=False)
    for row, sample in zip(grid, samples):
        noisy_psnr = image_scores(sample.clean, sample.noisy)[0]
        denoised_psnr = image_scores(sample.clean, sample.denoised)[0]
        titles = (f"noisy {noisy_psnr:.2f} dB", f"denoised {denoised_psnr:.2f} dB", "clean")
        for ax, pixels, title in zip(row, (sample.noisy, sample.denoised, sample.clean), titles):
            ax.imshow(shown(pixels), cmap="gray", vmin=0, vmax=255, interpolation="nearest")
            ax.set_title(title, fontsize=9)
            ax.set_axis_off()
        row[0].text(-0.05, 0.5, sample.name, rotation=90, ha="right", va="center",
                    fontsize=8, transform=row[0].transAxes)
    figure.tight_layout()


def samples_png(samples: list[Sample]) -> bytes:
    size = (3 * PANEL_INCHES + 0.4, max(1, len(samples)) * (PANEL_INCHES + 0.3))
    return render(lambda figure: draw_samples(figure, samples), size)
