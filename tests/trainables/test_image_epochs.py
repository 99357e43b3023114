"""`search.epoch: images` (HiNAS code: an epoch is one shuffled pass of the DataLoader over
the Train-W image list, `data/build_dataset.py`): ceil(images / batch) steps, each image
cropped once per epoch in an order that changes with the epoch."""

import numpy as np
import pytest
from pydantic import ValidationError

from studyspec.schema import SearchSpec, Study
from studyspec.steps import image_epoch_steps
from trainables.data.bundles import SearchData
from trainables.data.degradations import Degradation
from trainables.data.images import NamedImage
from trainables.data.patches import PatchDataset
from trainables.loops.search import with_image_epochs


def images(count: int, size: int = 12) -> list[NamedImage]:
    """Constant images whose grey level is their index / 100: a patch names its image."""
    return [NamedImage(f"img{i}", np.full((size, size, 1), i / 100, np.float32), "test")
            for i in range(count)]


def source_index(patch) -> int:
    return int(round(float(patch.mean()) * 100))


def test_steps_are_the_ceiling_of_images_over_batch():
    assert image_epoch_steps(147, 6) == 25  # the code's BSD500 split: 147 Train-W images
    assert image_epoch_steps(196, 8) == 25  # Train400 at 2% V, batch 8
    assert image_epoch_steps(16, 8) == 2
    with pytest.raises(ValueError):
        image_epoch_steps(0, 8)


def test_every_image_once_per_epoch_in_a_new_order():
    dataset = PatchDataset(images(10), 8, Degradation.from_spec({"type": "awgn", "sigma": 0}),
                           samples_per_epoch=10, seed=3, augment=False, cover=True)
    orders = []
    for epoch in (0, 1):
        dataset.set_epoch(epoch)
        orders.append([source_index(dataset[i][1]) for i in range(10)])
    assert sorted(orders[0]) == sorted(orders[1]) == list(range(10))
    assert orders[0] != orders[1]


def test_items_beyond_the_images_wrap_round_the_same_order():
    dataset = PatchDataset(images(5), 8, Degradation.from_spec({"type": "awgn", "sigma": 0}),
                           samples_per_epoch=8, seed=0, augment=False, cover=True)
    picked = [source_index(dataset[i][1]) for i in range(8)]
    assert sorted(picked[:5]) == list(range(5)) and picked[5:] == picked[:3]


def study(**search) -> Study:
    return Study.model_validate({"name": "s", "search_space": {"name": "hinas", "options": {
        "num_layers": 2, "num_nodes": 2, "width": 4}}, "search": {"epochs": 3,
        "warmup_epochs": 1, "batch_size": 4, **search}})


def test_the_loop_takes_its_steps_from_train_w():
    data = SearchData(train_w=images(9), train_a=images(9), val=images(1))
    assert with_image_epochs(study(epoch="images"), data).search.steps_per_epoch == 3
    joint = with_image_epochs(study(epoch="images", strategy="joint"), data)
    assert joint.search.steps_per_epoch == 5  # joint: Train-W and Train-A, 18 images
    assert with_image_epochs(study(), data).search.steps_per_epoch == 100


def test_steps_default_and_round_trip():
    assert SearchSpec().steps_per_epoch == 100
    spec = SearchSpec(epoch="images")
    assert spec.steps_per_epoch is None
    assert SearchSpec.model_validate(spec.model_dump()) == spec


@pytest.mark.parametrize("search, key", [
    ({"epoch": "images", "steps_per_epoch": 25}, "search.epoch"),
    ({"epoch": "images", "eval_every": 5}, "search.eval_every"),
    ({"epoch": "pixels"}, "search.epoch"),
])
def test_bad_input_names_the_key(search, key):
    with pytest.raises(ValidationError) as caught:
        study(**search)
    error = caught.value.errors()[0]
    assert ".".join(str(part) for part in error["loc"][:2]) == key


def test_search_loop_runs_image_epochs(monkeypatch):
    from trainables.data.embedded import embedded_images
    from trainables.loops import devices
    from trainables.loops import search as search_loop

    calls = []

    def spy(*args, **kwargs):
        calls.append((args[3], kwargs.get("cover")))  # (steps, cover)
        return real(*args, **kwargs)

    real = search_loop.patch_batches
    monkeypatch.setattr(search_loop, "patch_batches", spy)
    train = embedded_images("train", color=False)[:4]
    parsed = Study.model_validate({
        "name": "s", "data": {"patch_size": 16},
        "search_space": {"name": "hinas", "options": {"num_layers": 2, "num_nodes": 2,
                                                      "width": 3, "stem_channels": 4}},
        "search": {"epochs": 2, "epoch": "images", "batch_size": 2, "warmup_epochs": 1,
                   "val_crop": 24}})
    reports = []
    search_loop.run_search(parsed, SearchData(train_w=train[:3], train_a=train[:3],
                                              val=train[3:]),
                           lambda epoch, metrics, state: reports.append(metrics),
                           devices.configure(1, 0))
    assert calls == [(2, True), (2, True)]  # ceil(3 / 2) steps, every image once
    assert reports[-1]["search/stopped_at_step"] == 4
