"""The embedded default dataset: photographs bundled inside the scikit-image wheel.

No download is needed: every image below ships in `skimage/data` of
scikit-image 0.26 and loads offline (this project's choice, not a paper's). The split is fixed:

- test (4): camera (grey), astronaut, coffee, chelsea: the classic photographs.
- train (13): the rest of the natural images below.

Left out on purpose:
- need a pooch download (not in the wheel): brain, cells3d, eagle, human_mitosis,
  kidney, lily, nickel_solidification, palisades_of_vogt, protein_transport,
  skin, vortex;
- synthetic or not photographs: binary_blobs, checkerboard, colorwheel, horse
  (binary silhouette), logo, shepp_logan_phantom;
- already degraded: clock (motion-blurred);
- duplicates or too small: cat (= chelsea), microaneurysms (102x102, a retina
  crop), lfw_subset (25x25 faces).

Pixels are converted exactly like files (`trainables.data.images`): uint8 / 255, RGB
to grey by BT.601 luminance. Decoded arrays are cached (per name, and per (name, color));
callers get fresh copies, so they may write to them.
"""

from __future__ import annotations

import functools

import numpy as np

from trainables.data.images import NamedImage, to_channels, uint8_to_float

TEST_IMAGES = ("camera", "astronaut", "coffee", "chelsea")
TRAIN_IMAGES = (
    "rocket",
    "coins",
    "moon",
    "page",
    "text",
    "brick",
    "grass",
    "gravel",
    "motorcycle_left",
    "retina",
    "hubble_deep_field",
    "immunohistochemistry",
    "cell",
)
SPLITS = {"train": TRAIN_IMAGES, "test": TEST_IMAGES}


def embedded_images(split: str, color: bool) -> list[NamedImage]:
    """The images of one split ("train" or "test") as grey (C=1) or colour (C=3)."""
    if split not in SPLITS:
        raise ValueError(f"embedded split must be 'train' or 'test', got {split!r}")
    return [
        NamedImage(name, _cached_pixels(name, color).copy(), f"skimage.data.{name}")
        for name in SPLITS[split]
    ]


@functools.cache
def _cached_pixels(name: str, color: bool) -> np.ndarray:
    pixels = to_channels(uint8_to_float(_skimage_array(name)), color)  # (H, W, C)
    pixels.setflags(write=False)
    return pixels


@functools.cache
def _skimage_array(name: str) -> np.ndarray:
    """The uint8 array (H, W) or (H, W, 3) that `skimage.data` bundles under `name`."""
    import skimage.data  # imported lazily: it is slow and only this dataset needs it

    if name == "motorcycle_left":
        return skimage.data.stereo_motorcycle()[0]
    return getattr(skimage.data, name)()
