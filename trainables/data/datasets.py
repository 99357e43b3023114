"""Datasets by name: the benchmark folders, the embedded default, or any folder path.

Benchmarks live in `<data_root>/<name>`: `train400` (the 400 BSD
180x180 grey crops of DnCNN), `set12`, `bsd68`, `cbsd68` (colour), `urban100`
(grey here; MoD-NAS's timing table), and the JPEG artefact-removal sets `live1`
(colour: its BT.601 luminance for grey studies, `trainables.data.images`) and
`classic5` (grey). `embedded` is the scikit-image set, whose split follows the
role. A name containing "/" or starting with "." or "~" is a folder path, for
datasets users bring (Waterloo, ...). Any other name is a paired (real-noise) folder
under the data root, with `noisy/` and `clean/` (`trainables.data.paired`); so is
a folder path or benchmark folder laid out that way.
"""

from __future__ import annotations

from pathlib import Path

from trainables.data.embedded import embedded_images
from trainables.data.images import DataError, NamedImage
from trainables.data.paired import is_paired_folder, load_dataset_folder, load_pairs

BENCHMARK_TITLES = {"train400": "Train400", "set12": "Set12", "bsd68": "BSD68", "cbsd68": "CBSD68",
                    "urban100": "Urban100", "live1": "LIVE1", "classic5": "Classic5"}
KNOWN_DATASETS = (*BENCHMARK_TITLES, "embedded")
ROLES = ("train", "test")


def resolve_dataset(name: str, role: str, data_root: str | Path, color: bool) -> list[NamedImage]:
    """Load the images of dataset `name` for `role` ("train" or "test")."""
    if role not in ROLES:
        raise ValueError(f"dataset role must be 'train' or 'test', got {role!r}")
    if is_folder_path(name):
        return load_dataset_folder(Path(name).expanduser(), color)
    if name == "embedded":
        return embedded_images(role, color)
    if name in BENCHMARK_TITLES:
        return load_dataset_folder(benchmark_folder(name, data_root), color)
    if is_paired_folder(Path(data_root) / name):
        return load_pairs(Path(data_root) / name, color)
    known = ", ".join(KNOWN_DATASETS)
    raise DataError(f"unknown dataset {name!r} (known: {known}; or a folder path, or a folder "
                    f"{Path(data_root) / name} with noisy/ and clean/ subfolders)")


def is_folder_path(name: str) -> bool:
    return "/" in name or name.startswith((".", "~"))


def benchmark_folder(name: str, data_root: str | Path) -> Path:
    """The folder of a benchmark, after checking it exists."""
    folder = Path(data_root) / name
    if not folder.is_dir():
        raise DataError(
            f"dataset {name!r}: folder {folder} not found; "
            f"put the {BENCHMARK_TITLES[name]} PNG images there or pass --data-root"
        )
    return folder


def check_patch_size(images: list[NamedImage], patch_size: int) -> None:
    """Every image must hold a `patch_size` square crop."""
    if patch_size < 1:
        raise ValueError(f"patch size must be positive, got {patch_size}")
    for image in images:
        if image.height < patch_size or image.width < patch_size:
            raise DataError(
                f"{image.source}: image is {image.height}x{image.width}, "
                f"smaller than the patch size {patch_size}x{patch_size}"
            )
