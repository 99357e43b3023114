"""Paired (real-noise) datasets: a folder with `noisy/` and `clean/` subfolders.

Files pair up by name (`noisy/0001_010.png` with `clean/0001_010.png`; the
suffixes may differ, the stems may not). A pair is one `NamedImage` whose
`pixels` are the clean target and whose `noisy` is its real noisy input, read
like any image (8/16-bit, grey by BT.601 luminance). Nothing synthetic is added
to a pair: training crops the same window of both and applies the same
rescale and dihedral transform, and evaluation feeds the stored noisy image
under the level key `real` (a paired test set reports only `real`; a synthetic
one its noise levels). Image files beside `noisy/` and `clean/` are ignored.
Raw Bayer data is out of scope: convert it to sRGB first (see the README).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np

from trainables.data.degradations import degrade_for_test
from trainables.data.images import DataError, NamedImage, image_files, load_folder, read_image

REAL_KEY = "real"  # the level key of a paired image: its own noisy input
PAIR_FOLDERS = ("noisy", "clean")
MAX_LISTED = 5  # unmatched names listed in an error


def is_paired_folder(folder: str | Path) -> bool:
    """True when `folder` holds a `noisy/` or a `clean/` subfolder (both are then required)."""
    return any((Path(folder) / part).is_dir() for part in PAIR_FOLDERS)


def load_dataset_folder(folder: str | Path, color: bool) -> list[NamedImage]:
    """A dataset folder: real-noise pairs if it has `noisy/` and `clean/`, else clean images."""
    return load_pairs(folder, color) if is_paired_folder(folder) else load_folder(folder, color)


def load_pairs(folder: str | Path, color: bool) -> list[NamedImage]:
    """Every (noisy, clean) pair of a paired folder, sorted by name."""
    folder = Path(folder)
    missing = [part for part in PAIR_FOLDERS if not (folder / part).is_dir()]
    if missing:
        present = next(part for part in PAIR_FOLDERS if part not in missing)
        raise DataError(f"{folder}: has {present}/ but no {missing[0]}/ (a paired set needs "
                        "noisy/ and clean/ with matching file names)")
    return [_read_pair(noisy, clean, color) for noisy, clean in matched_files(folder)]


def matched_files(folder: Path) -> list[tuple[Path, Path]]:
    """(noisy file, clean file) by shared stem; any file without a partner is an error."""
    noisy = {path.stem: path for path in image_files(folder / "noisy")}
    clean = {path.stem: path for path in image_files(folder / "clean")}
    alone = sorted([f"noisy/{noisy[s].name}" for s in noisy.keys() - clean.keys()]
                   + [f"clean/{clean[s].name}" for s in clean.keys() - noisy.keys()])
    if alone:
        listed = ", ".join(alone[:MAX_LISTED]) + (", ..." if len(alone) > MAX_LISTED else "")
        raise DataError(f"{folder}: {len(alone)} file(s) of noisy/ and clean/ have no partner "
                        f"of the same name: {listed}")
    return [(noisy[stem], clean[stem]) for stem in sorted(noisy)]


def _read_pair(noisy_path: Path, clean_path: Path, color: bool) -> NamedImage:
    clean = read_image(clean_path, color)  # (H, W, C)
    noisy = read_image(noisy_path, color)  # (H, W, C)
    if noisy.shape != clean.shape:
        raise DataError(f"{noisy_path}: noisy image is {_size(noisy)} but its clean image "
                        f"{clean_path} is {_size(clean)}; a pair needs one size")
    return NamedImage(clean_path.stem, clean, str(clean_path), noisy=noisy)


def _size(pixels: np.ndarray) -> str:
    return "x".join(str(n) for n in pixels.shape[:2])


def keys_for(images: list[NamedImage], keys: list[str]) -> list[str]:
    """The level keys a set is evaluated at: `real` for a paired set, else `keys`."""
    return [REAL_KEY] if any(image.paired for image in images) else list(keys)


def same_draws(transform: Callable[[np.ndarray, np.random.Generator], np.ndarray],
               rng: np.random.Generator, *arrays: np.ndarray) -> list[np.ndarray]:
    """`transform(array, rng)` on each array with the same random draws (rng's state is
    replayed), so the arrays of a pair get one crop window, one rescale and one dihedral
    variant: the draws of `trainables.data.augment` depend only on the shape a pair shares."""
    start = rng.bit_generator.state
    results = []
    for array in arrays:
        rng.bit_generator.state = start
        results.append(transform(array, rng))
    return results


def test_input(image: NamedImage, key: str, crop: Callable | None = None) -> np.ndarray:
    """The network input of (image, key) at test time: a pair's own noisy image
    for `real`, else the protocol's degradation of the clean one. `crop` (pixels -> pixels)
    cuts both the same way before any synthetic noise is drawn."""
    crop = crop or (lambda pixels: pixels)
    if key != REAL_KEY:
        return degrade_for_test(np.ascontiguousarray(crop(image.pixels)), image.name, key)
    if image.noisy is None:
        raise ValueError(f"{image.source}: level key 'real' needs a paired image "
                         "(a folder with noisy/ and clean/)")
    return np.ascontiguousarray(crop(image.noisy))
