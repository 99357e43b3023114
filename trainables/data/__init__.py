"""Images in, training batches out: reading image files and named datasets (the
embedded default, the benchmark folders, paired real-noise folders), the splits of a
search, degradations (AWGN, JPEG), augmentation, random patches, and the bundles of images
a study's trials receive (loaded once in the driver); the patches are made by numpy on the CPU
(the reference) or by torch on the trial's device.

`__all__` is what other packages may import; the modules are private to it."""

from typing import TYPE_CHECKING

from trainables import lazy_face

if TYPE_CHECKING:  # imported when first used (`lazy_face`)
    from trainables.data.bundles import RetrainData, SearchData, StageData
    from trainables.data.degradations import Degradation
    from trainables.data.device import DevicePatches
    from trainables.data.images import DataError, NamedImage
    from trainables.data.loading import resolved_roots, stage_data, with_weights
    from trainables.data.manifests import dataset_manifests, manifest_hash
    from trainables.data.paired import keys_for, test_input
    from trainables.data.patches import PatchDataset, make_loader

__all__ = [
    "DataError",
    "Degradation",
    "DevicePatches",
    "NamedImage",
    "PatchDataset",
    "RetrainData",
    "SearchData",
    "StageData",
    "dataset_manifests",
    "keys_for",
    "make_loader",
    "manifest_hash",
    "resolved_roots",
    "stage_data",
    "test_input",
    "with_weights",
]

__getattr__ = lazy_face(__name__)
