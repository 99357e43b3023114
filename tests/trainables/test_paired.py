"""Paired (real-noise) datasets: a folder with noisy/ and clean/, loading, aligned training
crops, evaluation at the key `real`, and the one-line errors of a bad pair folder."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
from PIL import Image
from torch import nn

from studyspec.schema import Study
from trainables.data.datasets import resolve_dataset
from trainables.data.degradations import Degradation
from trainables.data.images import DataError, NamedImage
from trainables.data.loading import check_paired_training
from trainables.data.paired import REAL_KEY, keys_for, load_dataset_folder, load_pairs
from trainables.data.patches import PatchDataset
from trainables.loops.evaluation import evaluate_sets, image_scores
from trainables.loops.parts import centre_crop, validate
from trainables.plots.strips import sample_strips


def write_pairs(folder: Path, names: list[str], size: tuple[int, int] = (20, 24),
                noisy_names: list[str] | None = None) -> Path:
    """8-bit grey pairs: clean random levels, noisy = clean + N(0, 10) rounded and clipped."""
    rng = np.random.default_rng(len(names))
    for part in ("noisy", "clean"):
        (folder / part).mkdir(parents=True, exist_ok=True)
    for name, noisy_name in zip(names, noisy_names or names):
        clean = rng.integers(20, 236, size, dtype=np.uint8)
        noisy = np.clip(np.round(clean + rng.normal(0, 10, size)), 0, 255).astype(np.uint8)
        Image.fromarray(clean).save(folder / "clean" / f"{name}.png")
        Image.fromarray(noisy).save(folder / "noisy" / f"{noisy_name}.png")
    return folder


def pair(name: str, clean: np.ndarray, noise: np.ndarray) -> NamedImage:
    return NamedImage(name, clean.astype(np.float32), f"test:{name}",
                      noisy=(clean + noise).astype(np.float32))


def test_a_pair_folder_loads_pairs_by_name_sorted(tmp_path):
    folder = write_pairs(tmp_path / "real", ["b", "a", "c"])
    images = load_dataset_folder(folder, color=False)
    assert [image.name for image in images] == ["a", "b", "c"]
    first = images[0]
    assert first.paired and first.source == str(folder / "clean" / "a.png")
    assert first.pixels.shape == first.noisy.shape == (20, 24, 1)
    stored = np.asarray(Image.open(folder / "noisy" / "a.png"), dtype=np.float32) / 255
    assert np.array_equal(first.noisy[:, :, 0], stored)
    assert load_pairs(folder, color=True)[0].noisy.shape == (20, 24, 3)


def test_a_named_pair_folder_resolves_under_the_data_root(tmp_path):
    write_pairs(tmp_path / "sidd_val", ["x", "y"])
    images = resolve_dataset("sidd_val", "test", tmp_path, color=False)
    assert [image.name for image in images] == ["x", "y"] and images[0].paired
    with pytest.raises(DataError, match="unknown dataset 'other'.*noisy/ and clean/"):
        resolve_dataset("other", "test", tmp_path, color=False)


def test_unmatched_names_are_one_line_listing_five(tmp_path):
    names = [f"im{i}" for i in range(8)]
    write_pairs(tmp_path, names, noisy_names=names[:1] + [f"other{i}" for i in range(7)])
    with pytest.raises(DataError) as caught:
        load_pairs(tmp_path, color=False)
    message = str(caught.value)
    assert "\n" not in message and message.startswith(f"{tmp_path}: 14 file(s)")
    listed = message.split(": ")[-1].split(", ")
    assert listed == ["clean/im1.png", "clean/im2.png", "clean/im3.png", "clean/im4.png",
                      "clean/im5.png", "..."]


def test_a_size_mismatch_names_both_files(tmp_path):
    write_pairs(tmp_path, ["a"])
    Image.fromarray(np.zeros((20, 23), np.uint8)).save(tmp_path / "noisy" / "a.png")
    with pytest.raises(DataError) as caught:
        load_pairs(tmp_path, color=False)
    message = str(caught.value)
    assert "\n" not in message
    assert message.startswith(f"{tmp_path / 'noisy' / 'a.png'}: noisy image is 20x23")
    assert f"{tmp_path / 'clean' / 'a.png'} is 20x24" in message


def test_a_half_pair_folder_is_an_error(tmp_path):
    write_pairs(tmp_path, ["a"])
    (tmp_path / "clean" / "a.png").unlink()
    (tmp_path / "clean").rmdir()
    with pytest.raises(DataError, match="has noisy/ but no clean/"):
        load_dataset_folder(tmp_path, color=False)


@pytest.mark.parametrize("augment", [False, True])
def test_training_crops_are_aligned_and_not_degraded(augment):
    """Every clean value is unique, so it names its pixel: the noisy - clean difference of a
    patch must be the stored noise at exactly those pixels (same window, same transform)."""
    height, width = 30, 40
    clean = (np.arange(height * width, dtype=np.float32) / (height * width)).reshape(
        height, width, 1)
    noise = np.random.default_rng(0).normal(0, 0.1, clean.shape).astype(np.float32)
    awgn = Degradation.from_spec({"type": "awgn", "sigma": 50})  # must not be drawn
    dataset = PatchDataset([pair("p", clean, noise)], 8, awgn, samples_per_epoch=12, seed=3,
                           augment=augment)
    transformed = 0
    for index in range(len(dataset)):
        noisy_patch, clean_patch = (t.numpy()[0] for t in dataset[index])  # (P, P) each
        where = np.rint(clean_patch * height * width).astype(int)
        assert np.allclose(noisy_patch - clean_patch, noise.reshape(-1)[where], atol=1e-6)
        transformed += not np.array_equal(np.diff(where, axis=1), np.ones((8, 7)))
    assert (transformed > 0) == augment


def test_paired_sets_report_real_and_synthetic_sets_their_levels():
    rng = np.random.default_rng(1)
    clean = (rng.integers(0, 255, (24, 24, 1)) / 255).astype(np.float32)
    noise = rng.normal(0, 0.05, clean.shape).astype(np.float32)
    real = [pair("r", clean, noise)]
    synthetic = [NamedImage("s", clean, "test:s")]
    metrics = evaluate_sets(nn.Identity(), {"sidd": real, "set": synthetic}, ["sigma25", "q10"],
                            "cpu")
    assert sorted(metrics) == sorted(f"{s}/{k}/{m}" for s, k in [
        ("sidd", REAL_KEY), ("set", "sigma25"), ("set", "q10")] for m in ("psnr", "ssim"))
    assert metrics["sidd/real/psnr"] == pytest.approx(image_scores(clean, clean + noise)[0])
    assert keys_for(real, ["sigma25"]) == [REAL_KEY] and keys_for(synthetic, ["q10"]) == ["q10"]


def test_validation_and_samples_use_the_pairs():
    rng = np.random.default_rng(2)
    clean = (rng.integers(0, 255, (40, 40, 1)) / 255).astype(np.float32)
    images = [pair("r", clean, rng.normal(0, 0.05, clean.shape))]
    cropped = centre_crop(images, 16)[0]
    assert np.array_equal(cropped.noisy, images[0].noisy[12:28, 12:28])
    runtime = SimpleNamespace(device="cpu")
    psnr = image_scores(cropped.pixels, cropped.noisy)[0]
    metrics = validate(nn.Identity(), [cropped], ["sigma25"], runtime)
    assert metrics["val/psnr"] == pytest.approx(psnr)
    assert list(sample_strips(nn.Identity(), {"sidd": images}, ["sigma25"], "cpu")) == [
        "samples/sidd/r_real.png"]


def test_several_retrain_noises_on_paired_training_are_an_error():
    study = Study.model_validate({"name": "t", "search_space": {"name": "hinas"}, "retrain": {
        "noise": [{"sigma": 15}, {"sigma": 25}]}})
    images = [pair("r", np.zeros((8, 8, 1)), np.zeros((8, 8, 1)))]
    with pytest.raises(DataError, match="retrain.noise: 2 entries.*paired"):
        check_paired_training(study, images)
    check_paired_training(study, [NamedImage("c", np.zeros((8, 8, 1)), "c")])
