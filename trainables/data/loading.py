"""Loading a study's datasets once in the driver; trials receive them through Ray's object store."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import replace
from functools import lru_cache
from pathlib import Path

from studyspec.schema import Study
from trainables.data.bundles import RetrainData, SearchData, StageData
from trainables.data.datasets import check_patch_size, resolve_dataset
from trainables.data.images import DataError, NamedImage
from trainables.data.splits import group_labels, split_for_search

DEFAULT_ROOTS = ("./data", "../shared/datasets")  # the user's folder, then this repo's dev layout


def data_root(name: str, root: str | None) -> Path:
    """The folder to resolve a named dataset in: the study's / --data-root's, or the first
    default root that has it (errors then name ./data, where users put their images)."""
    if root is not None:
        return Path(root)
    found = next((Path(r) for r in DEFAULT_ROOTS if (Path(r) / name).is_dir()), None)
    return found or Path(DEFAULT_ROOTS[0])


@lru_cache(maxsize=16)
def _load(name: str, role: str, root: str | None, color: bool) -> tuple[NamedImage, ...]:
    return tuple(resolve_dataset(name, role, data_root(name, root), color))


def load_named(name: str, role: str, root: str | None, color: bool) -> tuple[NamedImage, ...]:
    """Every image of a named dataset (or folder) in `role`, read once per process."""
    return _load(name, role, root, color)


def resolved_roots(study: Study) -> dict[str, str]:
    """Where each named dataset of the study was found (logged: data.root may be unset)."""
    names = [study.data.train, *study.data.test, *(study.search.monitor or [])]
    return {name: str(data_root(name, study.data.root).resolve())
            for name in names if name != "embedded" and "/" not in name}


def keyed(key: str, load: Callable[[], tuple[NamedImage, ...]]) -> tuple[NamedImage, ...]:
    """`load()`, its DataError naming the study key it came from."""
    try:
        return load()
    except DataError as error:
        message = str(error)
        raise DataError(message if message.startswith(key) else f"{key}: {message}") from None


def train_images(study: Study) -> list[NamedImage]:
    data = study.data
    images = list(keyed("data.train", lambda: _load(data.train, "train", data.root,
                                                     data.color)))
    if data.max_train_images is not None:
        images = images[: data.max_train_images]
    check_patch_size(images, data.patch_size)
    check_paired_training(study, images)
    return images


def check_paired_training(study: Study, images: list[NamedImage]) -> None:
    """A paired (real-noise) training set brings its own noisy inputs, so data.noise is not
    drawn and several retrain.noise entries would train the same network several times."""
    entries = study.retrain.noise or []
    if len(entries) > 1 and any(image.paired for image in images):
        raise DataError(f"retrain.noise: {len(entries)} entries, but data.train "
                        f"'{study.data.train}' is a paired (real-noise) set whose noise is its "
                        "own; give one entry or none")


def test_set_label(name: str) -> str:
    """A test set's name in metric keys (`test/<label>/<level>/psnr`): a dataset name as
    given, a folder by its last component (MLflow refuses keys with `//` or a whole path)."""
    if "/" not in name and "\\" not in name:
        return name
    return re.sub(r"[^A-Za-z0-9_.-]", "_", Path(name.replace("\\", "/")).name) or "test"


def test_sets(study: Study) -> dict[str, list[NamedImage]]:
    return named_sets(study, "data.test", study.data.test)


def monitor_sets(study: Study) -> dict[str, list[NamedImage]]:
    """The test sets the supernet is scored on every search epoch; errors name the key."""
    try:
        return named_sets(study, "search.monitor", study.search.monitor or [])
    except DataError as error:
        message = str(error)
        raise DataError(message if message.startswith("search.monitor") else
                        f"search.monitor: {message}") from None


def named_sets(study: Study, key: str, names: list[str]) -> dict[str, list[NamedImage]]:
    """Test sets by their metric label (errors name `key`)."""
    data, sets = study.data, {}
    for name in names:
        label = test_set_label(name)
        if label in sets:
            raise DataError(f"{key}: '{name}' and another test set are both named "
                            f"'{label}' in the metrics; rename one folder")
        sets[label] = list(keyed(key, lambda n=name: _load(n, "test", data.root, data.color)))
    return sets


def stage_data(study: Study) -> StageData:
    """Train-W / Train-A / V (and search.monitor's sets) for the search; W+A / V and the
    test sets for retraining."""
    images = train_images(study)
    groups = split_groups(study, images)
    try:
        train_w, train_a, val = split_for_search(images, study.seed, study.data.val_fraction,
                                                 groups)
    except ValueError as error:
        raise DataError(f"data.train: dataset '{study.data.train}': {error} (Train-W, Train-A "
                        "and, with data.val_fraction > 0, Validation-V)") from None
    search = SearchData(train_w=train_w, train_a=train_a, val=val, monitor=monitor_sets(study))
    retrain = RetrainData(train=train_w + train_a, val=val, test_sets=test_sets(study))
    return StageData(search, retrain)


def split_groups(study: Study, images: list[NamedImage]) -> list[str] | None:
    """Each training image's label for a stratified split (None: random); a file name that
    data.group_pattern does not match stops the study rather than splitting it at random."""
    if study.data.split != "stratified":
        return None
    try:
        return group_labels([image.name for image in images], study.data.group_pattern)
    except ValueError as error:
        raise DataError(f"data.group_pattern: data.train '{study.data.train}': {error}") from None


def with_weights(data: StageData, weights: str | None) -> StageData:
    """A baseline arm's data carries its published weights (sent with the data, so that
    nodes without the file can evaluate them)."""
    if weights is None:
        return data
    return replace(data, retrain=replace(data.retrain, weights=Path(weights).read_bytes()))
