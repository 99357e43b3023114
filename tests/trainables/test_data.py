"""Tests of image I/O, datasets, degradations, augmentation, search splits and patches."""

from __future__ import annotations

import socket
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from trainables.data import embedded
from trainables.data.augment import augment, random_crop, random_rescale, random_scaled_crop
from trainables.data.datasets import KNOWN_DATASETS, check_patch_size, resolve_dataset
from trainables.data.degradations import Degradation, degrade_for_test, parse_test_key
from trainables.data.images import DataError, NamedImage, load_folder, read_image
from trainables.data.patches import PatchDataset, make_loader
from trainables.data.splits import split_for_search

SHARED_SET12 = Path("/work/shared/datasets/set12")


def write_image(path: Path, values: np.ndarray) -> Path:
    Image.fromarray(values).save(path)
    return path


def random_uint8(shape: tuple[int, ...], seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, shape, dtype=np.uint8)


def tiny_images(count: int, size: int = 16, channels: int = 1) -> list[NamedImage]:
    rng = np.random.default_rng(count)
    return [
        NamedImage(f"im{i}", rng.random((size, size + i, channels), dtype=np.float32), f"im{i}")
        for i in range(count)
    ]


# --- images ---------------------------------------------------------------------------------


def test_grey_png_reads_exactly_as_value_over_255(tmp_path):
    values = random_uint8((9, 7))
    pixels = read_image(write_image(tmp_path / "g.png", values), color=False)
    assert pixels.dtype == np.float32 and pixels.shape == (9, 7, 1)
    assert np.array_equal(pixels[:, :, 0], values.astype(np.float32) / np.float32(255))


def test_rgb_png_reads_as_colour_or_bt601_luminance(tmp_path):
    values = random_uint8((5, 6, 3))
    path = write_image(tmp_path / "c.png", values)
    assert np.array_equal(read_image(path, color=True), values.astype(np.float32) / 255)
    expected = (values / 255.0) @ np.array([0.299, 0.587, 0.114])
    assert np.allclose(read_image(path, color=False)[:, :, 0], expected, atol=1e-6)


def test_grey_file_as_colour_repeats_channel_and_alpha_is_dropped(tmp_path):
    grey = read_image(write_image(tmp_path / "g.png", random_uint8((4, 4))), color=True)
    assert grey.shape == (4, 4, 3) and np.array_equal(grey[:, :, 0], grey[:, :, 2])
    rgba = random_uint8((4, 4, 4))
    pixels = read_image(write_image(tmp_path / "a.png", rgba), color=True)
    assert np.array_equal(pixels, rgba[:, :, :3].astype(np.float32) / 255)


def test_sixteen_bit_png_scales_by_65535(tmp_path):
    values = np.random.default_rng(1).integers(0, 65536, (6, 5), dtype=np.uint16)
    pixels = read_image(write_image(tmp_path / "d.png", values), color=False)
    assert np.allclose(pixels[:, :, 0], values / 65535.0, atol=1e-7)
    assert pixels.max() > 0.5  # not read as 8-bit


def test_unreadable_image_is_a_one_line_error_naming_it(tmp_path):
    path = tmp_path / "broken.png"
    path.write_bytes(b"not a png\nat all")
    with pytest.raises(DataError, match="broken.png: not a readable image") as caught:
        read_image(path, color=False)
    assert "\n" not in str(caught.value)


def test_load_folder_sorts_accepts_suffixes_and_ignores_hidden(tmp_path):
    write_image(tmp_path / "b.BMP", random_uint8((4, 4)))
    write_image(tmp_path / "a.png", random_uint8((4, 4)))
    write_image(tmp_path / "c.JPG", random_uint8((4, 4, 3)))
    write_image(tmp_path / "d.tif", random_uint8((4, 4)))
    (tmp_path / ".DS_Store").write_bytes(b"junk")
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "notes.txt").write_text("ignored")
    images = load_folder(tmp_path, color=False)
    assert [image.name for image in images] == ["a", "b", "c", "d"]
    assert images[0].source == str(tmp_path / "a.png")
    assert all(image.pixels.shape == (4, 4, 1) for image in images)


def test_non_image_file_in_folder_is_an_error_naming_it(tmp_path):
    write_image(tmp_path / "a.png", random_uint8((4, 4)))
    (tmp_path / "notes.txt").write_text("hello")
    with pytest.raises(DataError, match="notes.txt"):
        load_folder(tmp_path, color=False)


def test_missing_empty_and_duplicate_folders_are_errors(tmp_path):
    with pytest.raises(DataError, match="nowhere: folder not found .*expected PNG"):
        load_folder(tmp_path / "nowhere", color=False)
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="empty: no images"):
        load_folder(tmp_path / "empty", color=False)
    write_image(tmp_path / "x.png", random_uint8((4, 4)))
    write_image(tmp_path / "x.bmp", random_uint8((4, 4)))
    with pytest.raises(DataError, match="same name"):
        load_folder(tmp_path, color=False)


# --- datasets -------------------------------------------------------------------------------


def test_named_benchmark_and_folder_path_resolve(tmp_path):
    (tmp_path / "set12").mkdir()
    write_image(tmp_path / "set12" / "01.png", random_uint8((8, 8)))
    assert [im.name for im in resolve_dataset("set12", "test", tmp_path, False)] == ["01"]
    images = resolve_dataset(str(tmp_path / "set12"), "train", "unused", color=True)
    assert images[0].pixels.shape == (8, 8, 3)


def test_missing_benchmark_folder_says_where_to_put_images(tmp_path):
    with pytest.raises(DataError) as caught:
        resolve_dataset("bsd68", "test", tmp_path, color=False)
    message = str(caught.value)
    assert str(tmp_path / "bsd68") in message and "BSD68 PNG images" in message
    assert "--data-root" in message


def test_unknown_dataset_lists_the_known_ones():
    with pytest.raises(DataError, match=r"unknown dataset 'foo' \(known: .*set12.*folder path"):
        resolve_dataset("foo", "train", "data", color=False)
    assert set(KNOWN_DATASETS) == {"train400", "set12", "bsd68", "cbsd68", "urban100", "live1",
                                   "classic5", "embedded"}
    with pytest.raises(ValueError, match="role"):
        resolve_dataset("embedded", "validation", "data", color=False)


def test_image_smaller_than_patch_names_file_and_sizes():
    images = [NamedImage("small", np.zeros((40, 50, 1), np.float32), "data/x/small.png")]
    check_patch_size(images, 40)
    with pytest.raises(DataError, match=r"data/x/small.png: image is 40x50.*patch size 48x48"):
        check_patch_size(images, 48)


# --- degradations ---------------------------------------------------------------------------


def test_degradation_specs_parse_and_round_trip():
    cases = {
        Degradation("awgn", (25.0,)): {"type": "awgn", "sigma": 25},
        Degradation("awgn", (30.0, 50.0, 70.0)): {"type": "awgn", "sigma": [30, 50, 70]},
        Degradation("awgn", (0.0, 55.0), blind=True): {"type": "awgn", "sigma_range": [0, 55]},
        Degradation("jpeg", (10.0, 20.0)): {"type": "jpeg", "quality": [10, 20]},
    }
    for expected, spec in cases.items():
        assert Degradation.from_spec(spec) == expected
        assert Degradation.from_spec(expected.to_spec()) == expected


@pytest.mark.parametrize(
    ("spec", "named"),
    [
        ({"type": "awgn", "sigma": 25, "quality": 10}, "'quality'"),
        ({"type": "awgn"}, "exactly one"),
        ({"type": "blur", "sigma": 2}, "'type'"),
        ({"type": "awgn", "sigma_range": [55, 0]}, "lo <= hi"),
        ({"type": "jpeg", "quality": 0}, r"\[1, 100\]"),
    ],
)
def test_bad_degradation_specs_name_the_problem(spec, named):
    with pytest.raises(ValueError, match=named):
        Degradation.from_spec(spec)


def test_awgn_has_the_right_std_and_is_unclipped():
    clean = np.zeros((256, 256, 1), np.float32)
    noisy = Degradation("awgn", (25.0,)).apply(clean, np.random.default_rng(0))
    assert noisy.dtype == np.float32 and noisy.shape == clean.shape
    assert abs(noisy.std() - 25 / 255) < 0.01 * 25 / 255
    assert abs(noisy.mean()) < 1e-3 and (noisy < 0).any()


def test_sigma_list_only_draws_listed_values_and_range_stays_in_bounds():
    rng = np.random.default_rng(0)
    listed = Degradation.from_spec({"type": "awgn", "sigma": [30, 50, 70]})
    assert {listed.draw_level(rng) for _ in range(200)} == {30.0, 50.0, 70.0}
    blind = Degradation.from_spec({"type": "awgn", "sigma_range": [5, 55]})
    draws = np.array([blind.draw_level(rng) for _ in range(500)])
    assert draws.min() >= 5 and draws.max() <= 55 and draws.min() < 10 and draws.max() > 50


def test_jpeg_output_differs_from_clean_and_stays_in_range():
    ramp = np.linspace(0, 1, 64, dtype=np.float32)
    clean = (np.add.outer(ramp, ramp) / 2)[:, :, None] + random_uint8((64, 64, 1)) / 2550
    clean = clean.astype(np.float32)
    jpeg = Degradation.from_spec({"type": "jpeg", "quality": 10})
    out = jpeg.apply(clean, np.random.default_rng(0))
    assert out.shape == clean.shape and out.dtype == np.float32
    assert 0 <= out.min() and out.max() <= 1
    error_q10 = np.abs(out - clean).mean()
    error_q90 = np.abs(degrade_for_test(clean, "x", "q90") - clean).mean()
    assert error_q10 > error_q90 > 0


def test_test_inputs_are_deterministic_and_follow_the_dncnn_draw():
    clean = np.full((64, 64, 1), 0.5, np.float32)
    first = degrade_for_test(clean, "01", "sigma25")
    assert first.dtype == np.float32 and np.array_equal(
        first, degrade_for_test(clean, "01", "sigma25")
    )
    # the DnCNN/KAIR convention: one seed for every image, noise scales with sigma
    assert np.array_equal(first, degrade_for_test(clean, "02", "sigma25"))
    assert np.allclose(first - 0.5, (degrade_for_test(clean, "01", "sigma50") - 0.5) / 2,
                       atol=1e-6)
    assert not np.array_equal(first[:32, :32], degrade_for_test(clean[:32, :32], "01",
                                                                 "sigma25"))
    assert abs((first - clean).std() - 25 / 255) < 0.05 * 25 / 255


def test_test_noise_protocol_is_pinned():
    """np.random.seed(0); normal(0, 25/255): changing it would change every published score."""
    noisy = degrade_for_test(np.zeros((2, 2, 1), np.float32), "01", "sigma25")
    expected = np.random.RandomState(0).normal(0, 25 / 255, (2, 2, 1)).astype(np.float32)
    assert np.allclose(noisy.ravel(), [0.1729463, 0.0392311, 0.0959547, 0.21969542],
                       atol=1e-7)
    assert np.array_equal(noisy, expected)


def test_test_keys_parse_and_format():
    assert parse_test_key("sigma25") == ("awgn", 25.0)
    assert parse_test_key("q10") == ("jpeg", 10.0)
    assert Degradation("awgn", (25.0,)).test_key(25.0) == "sigma25"
    assert Degradation("jpeg", (10.0,)).test_key(10.0) == "q10"
    with pytest.raises(ValueError, match="sigma25"):
        parse_test_key("s25")


# --- augmentation ---------------------------------------------------------------------------


def test_augment_yields_exactly_the_eight_dihedral_transforms():
    patch = np.arange(12, dtype=np.float32).reshape(2, 3, 2)  # (H, W, C), no symmetry
    rotations = [np.rot90(patch, k, axes=(0, 1)) for k in range(4)]
    expected = {r.tobytes() + bytes(r.shape) for r in rotations + [r[:, ::-1] for r in rotations]}
    rng = np.random.default_rng(0)
    outputs = [augment(patch, rng) for _ in range(200)]
    assert all(out.flags.c_contiguous for out in outputs)
    assert {out.tobytes() + bytes(out.shape) for out in outputs} == expected
    assert len(expected) == 8


def test_random_crop_is_a_window_and_rescale_changes_size():
    image = np.random.default_rng(0).random((20, 30, 1), dtype=np.float32)
    crop = random_crop(image, 8, np.random.default_rng(1))
    windows = np.lib.stride_tricks.sliding_window_view(image, (8, 8, 1))
    assert crop.shape == (8, 8, 1) and (windows == crop).all(axis=(-3, -2, -1)).any()
    with pytest.raises(ValueError):
        random_crop(image, 21, np.random.default_rng(1))
    rng = np.random.default_rng(2)
    sizes = {random_rescale(image, rng, p=1.0).shape[0] for _ in range(30)}
    assert min(sizes) >= 16 and max(sizes) <= 24 and len(sizes) > 3
    assert random_rescale(image, rng, p=0.0) is image
    scaled = random_scaled_crop(image, 8, rng, p=1.0)
    assert scaled.shape == (8, 8, 1) and 0 <= scaled.min() and scaled.max() <= 1


# --- splits ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("count", "val_fraction", "sizes"),
    [(400, 0.02, (196, 196, 8)), (3, 0.02, (1, 1, 1)), (12, 0.02, (6, 5, 1)), (11, 0.0, (6, 5, 0))],
)
def test_split_sizes(count, val_fraction, sizes):
    parts = split_for_search(list(range(count)), seed=0, val_fraction=val_fraction)
    assert tuple(len(part) for part in parts) == sizes


def test_split_is_deterministic_disjoint_and_complete():
    items = list(range(50))
    parts = split_for_search(items, seed=3, val_fraction=0.1)
    assert parts == split_for_search(items, seed=3, val_fraction=0.1)
    assert parts != split_for_search(items, seed=4, val_fraction=0.1)
    assert sorted(parts[0] + parts[1] + parts[2]) == items
    with pytest.raises(ValueError, match="at least 3"):
        split_for_search([1, 2], seed=0)
    with pytest.raises(ValueError, match="at least 2"):
        split_for_search([1], seed=0, val_fraction=0)


# --- patches --------------------------------------------------------------------------------


def awgn_patches(seed: int = 0, channels: int = 1, **options) -> PatchDataset:
    degradation = Degradation("awgn", (25.0,))
    return PatchDataset(tiny_images(3, 16, channels), 8, degradation, 12, seed, **options)


def test_patch_dataset_returns_noisy_clean_tensor_pairs():
    noisy, clean = awgn_patches(channels=3)[0]
    assert noisy.shape == clean.shape == (3, 8, 8)
    assert noisy.dtype == clean.dtype == torch.float32
    assert 0.05 < (noisy - clean).std() < 0.15
    noisy, clean = awgn_patches(rescale=True, augment=False)[5]
    assert clean.shape == (1, 8, 8)


def test_patch_dataset_is_deterministic_per_seed_epoch_and_index():
    dataset = awgn_patches()
    assert torch.equal(dataset[4][0], awgn_patches()[4][0])
    assert not torch.equal(dataset[4][1], dataset[5][1])
    assert not torch.equal(dataset[4][1], awgn_patches(seed=1)[4][1])
    before = dataset[4][1]
    dataset.set_epoch(1)
    assert not torch.equal(before, dataset[4][1])
    with pytest.raises(IndexError):
        dataset[12]


def test_loader_batches_and_rejects_small_images():
    batches = list(make_loader(awgn_patches(), batch_size=5))
    assert len(batches) == 2 and batches[0][0].shape == (5, 1, 8, 8)
    with pytest.raises(ValueError, match="batch size"):
        make_loader(awgn_patches(), batch_size=13)
    with pytest.raises(DataError, match="im0: image is 16x16"):
        PatchDataset(tiny_images(2, 16), 17, Degradation("awgn", (25.0,)), 4, 0)


# --- embedded and shared datasets -----------------------------------------------------------


def test_embedded_loads_offline_with_disjoint_splits(monkeypatch):
    def refuse(*args, **kwargs):
        raise OSError("network access during embedded loading")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    embedded._cached_pixels.cache_clear()
    embedded._skimage_array.cache_clear()
    train = resolve_dataset("embedded", "train", "unused", color=False)
    test = resolve_dataset("embedded", "test", "unused", color=True)
    assert len(train) >= 10 and 3 <= len(test) <= 5
    assert not {im.name for im in train} & {im.name for im in test}
    assert all(im.pixels.shape[2] == 1 and im.pixels.dtype == np.float32 for im in train)
    assert all(
        im.pixels.shape[2] == 3 and 0 <= im.pixels.min() <= im.pixels.max() <= 1 for im in test
    )
    assert all(min(im.pixels.shape[:2]) >= 128 for im in train + test)


def test_embedded_camera_is_exact_and_copies_are_independent():
    import skimage.data

    camera = embedded.embedded_images("test", color=False)[0]
    assert camera.name == "camera" and camera.source == "skimage.data.camera"
    assert np.array_equal(camera.pixels[:, :, 0], skimage.data.camera() / np.float32(255))
    camera.pixels[:] = 0
    assert embedded.embedded_images("test", color=False)[0].pixels.max() > 0


@pytest.mark.skipif(not SHARED_SET12.is_dir(), reason="shared Set12 not available")
def test_shared_set12_has_twelve_grey_images():
    images = resolve_dataset("set12", "test", SHARED_SET12.parent, color=False)
    assert [im.name for im in images] == [f"{i:02d}" for i in range(1, 13)]
    assert all(im.pixels.shape[2] == 1 and im.pixels.max() <= 1 for im in images)


def test_a_test_folder_is_named_by_its_last_component_in_metric_keys(tmp_path):
    from orchestrator.study.reading import validate
    from trainables.data.loading import test_set_label, test_sets

    for folder in (tmp_path / "my set", tmp_path / "other" / "my set"):
        folder.mkdir(parents=True)
    for index in range(2):
        write_image(tmp_path / "my set" / f"{index}.png", random_uint8((20, 20), index))
        write_image(tmp_path / "other" / "my set" / f"{index}.png", random_uint8((20, 20)))
    assert test_set_label("set12") == "set12"
    assert test_set_label(str(tmp_path / "my set")) == "my_set"
    space = {"name": "dncnn"}
    study = validate({"name": "t", "search_space": space,
                      "data": {"test": ["embedded", str(tmp_path / "my set")]}})
    assert sorted(test_sets(study)) == ["embedded", "my_set"]
    twice = validate({"name": "t", "search_space": space, "data": {"test": [
                                                     str(tmp_path / "my set"),
                                                     str(tmp_path / "other" / "my set")]}})
    with pytest.raises(DataError, match="data.test: .* both named 'my_set'"):
        test_sets(twice)
