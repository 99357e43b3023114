"""Image I/O: read files and folders into float32 (H, W, C) arrays in [0, 1].

Conventions:
- 8-bit images are divided by 255, 16-bit images by 65535; nothing else touches
  the values, so an 8-bit grey PNG comes back exactly as `value / 255` (the
  evaluation protocol compares PSNR to 0.01 dB).
- Grey output from an RGB file uses ITU-R BT.601 luminance
  `0.299 R + 0.587 G + 0.114 B`, computed on the float values. Grey files stay
  as they are; with `color=True` their single channel is repeated three times.
- Alpha is dropped (not composited). Palette and bilevel images are expanded.
- Pillow reads 48-bit RGB PNGs as 8-bit, so 16-bit colour is not supported.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp")
LUMINANCE_WEIGHTS = np.array([0.299, 0.587, 0.114])  # ITU-R BT.601
_SIXTEEN_BIT_MODES = ("I;16", "I;16B", "I;16L", "I;16N", "I")
_GREY_MODES = ("L", "LA", "1") + _SIXTEEN_BIT_MODES


class DataError(ValueError):
    """A bad input file or folder; the message is one line naming it."""


@dataclass(frozen=True)
class NamedImage:
    """One clean image and where it came from; with `noisy`, one real-noise pair."""

    name: str  # file stem, or the skimage.data name; seeds the test noise
    pixels: np.ndarray  # (H, W, C) float32 in [0, 1], C = 1 or 3
    source: str  # file path, or "skimage.data.<name>"
    # (H, W, C) the pair's real noisy input (`trainables.data.paired`); None: degraded synthetically
    noisy: np.ndarray | None = None

    @property
    def paired(self) -> bool:
        return self.noisy is not None

    @property
    def height(self) -> int:
        return self.pixels.shape[0]

    @property
    def width(self) -> int:
        return self.pixels.shape[1]


MAX_PIXELS = 100_000_000  # checked from the header, before decoding (a 10000 x 10000 image)


def read_image(path: str | Path, color: bool) -> np.ndarray:
    """Read one image file as (H, W, C) float32 in [0, 1]; C = 3 if `color` else 1."""
    try:
        with Image.open(path) as image:
            width, height = image.size
            if width * height > MAX_PIXELS:
                raise DataError(f"{path}: the header says {width} x {height} pixels, more "
                                f"than the {MAX_PIXELS // 10**6}-megapixel limit")
            pixels = _pixels_from_pil(image, path)  # (H, W, C) float32, C = 1 or 3
    except DataError:
        raise
    except Image.DecompressionBombError as error:  # PIL's own check, at twice its limit
        raise DataError(f"{path}: the header claims too many pixels to decode safely "
                        f"({' '.join(str(error).split())})") from None
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as error:
        reason = " ".join(str(error).split()) or type(error).__name__
        raise DataError(f"{path}: not a readable image ({reason})") from error
    return to_channels(pixels, color)


def to_channels(pixels: np.ndarray, color: bool) -> np.ndarray:
    """Convert (H, W, 1 or 3) float pixels to 3 channels (`color`) or to grey luminance."""
    channels = pixels.shape[2]
    if color and channels == 1:
        return np.repeat(pixels, 3, axis=2)  # (H, W, 3)
    if not color and channels == 3:
        grey = pixels.astype(np.float64) @ LUMINANCE_WEIGHTS  # (H, W)
        return grey[:, :, None].astype(np.float32)  # (H, W, 1)
    return pixels.astype(np.float32, copy=False)


def uint8_to_float(values: np.ndarray) -> np.ndarray:
    """(H, W) or (H, W, C) uint8 -> (H, W, C) float32 in [0, 1], exactly value / 255."""
    pixels = values.astype(np.float32) / np.float32(255)
    return pixels[:, :, None] if pixels.ndim == 2 else pixels


def _pixels_from_pil(image: Image.Image, path: str | Path) -> np.ndarray:
    """Decode a PIL image to (H, W, 1 or 3) float32 without changing grey values."""
    if image.mode == "F":  # 32-bit float (TIFF): taken as it is when already in [0, 1]
        return _float_pixels(np.asarray(image, dtype=np.float32), path)
    if image.mode in _SIXTEEN_BIT_MODES:
        values = np.asarray(image).astype(np.float32) / np.float32(65535)
        return values[:, :, None]  # (H, W, 1)
    if image.mode in _GREY_MODES:
        return uint8_to_float(np.asarray(image.getchannel(0).convert("L")))
    if image.mode not in ("RGB", "RGBA"):
        image = image.convert("RGBA" if "transparency" in image.info else "RGB")
    return uint8_to_float(np.asarray(image)[:, :, :3])  # (H, W, 3), alpha dropped


def _float_pixels(values: np.ndarray, path: str | Path) -> np.ndarray:
    """Float pixels in [0, 1] as (H, W, 1); anything else is refused, never rescaled by guess."""
    low, high = float(np.min(values)), float(np.max(values))
    if not (np.isfinite(low) and np.isfinite(high) and 0 <= low and high <= 1):
        raise DataError(f"{path}: float pixels span [{low:g}, {high:g}], not [0, 1]; save the "
                        "image as 8- or 16-bit, or scale it to [0, 1]")
    return values[:, :, None]


def is_image_file(path: Path) -> bool:
    return path.suffix.lower() in IMAGE_SUFFIXES


def load_folder(folder: str | Path, color: bool) -> list[NamedImage]:
    """Load every image of a folder, sorted by file name.

    Strict: any other visible regular file is an error naming it. Hidden files
    (`.DS_Store`) and subfolders are ignored.
    """
    files = image_files(folder)
    return [NamedImage(file.stem, read_image(file, color), str(file)) for file in files]


def image_files(folder: str | Path) -> list[Path]:
    """The image files of `folder`, sorted by name, after checking the folder is clean."""
    folder = Path(folder)
    expected = "expected PNG/JPEG/TIFF/BMP images there"
    if not folder.is_dir():
        raise DataError(f"{folder}: folder not found ({expected})")
    visible = sorted(p for p in folder.iterdir() if p.is_file() and not p.name.startswith("."))
    for path in visible:
        if not is_image_file(path):
            allowed = "/".join(s.lstrip(".") for s in IMAGE_SUFFIXES)
            raise DataError(f"{path}: not an image file (allowed suffixes: {allowed})")
    if not visible:
        raise DataError(f"{folder}: no images found ({expected})")
    _check_unique_stems(visible)
    return visible


def _check_unique_stems(files: list[Path]) -> None:
    """Image names seed the test noise, so two files may not share a stem."""
    seen: dict[str, Path] = {}
    for path in files:
        if path.stem in seen:
            raise DataError(f"{path}: same name as {seen[path.stem].name}; image names must differ")
        seen[path.stem] = path
