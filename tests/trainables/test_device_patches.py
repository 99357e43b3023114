"""Training patches made by torch on the trial's device (`data.pipeline: device`) against the
numpy reference (`PatchDataset` through its DataLoader) for the same seeds: the same image,
window and dihedral variant per item, so equal clean patches (exactly; within float rounding
where the patch was rescaled, Pillow's bicubic against torch's antialiased one), equal JPEG
inputs (both through Pillow), equal real-noise pairs; AWGN from a different generator, so
equal in distribution only: per item the reference's sigma, standard normal per pixel,
independent across items."""

import numpy as np
import pytest
import torch

from trainables.data import Degradation, DevicePatches, NamedImage, PatchDataset, make_loader
from trainables.data.images import uint8_to_float
from trainables.loops.parts import patch_batches


def images(count: int = 5, size: int = 48, seed: int = 0) -> list[NamedImage]:
    """8-bit images of different shapes (values k / 255, stored as uint8 on the device)."""
    rng = np.random.default_rng(seed)
    return [NamedImage(f"i{k}", uint8_to_float(rng.integers(0, 256, (size + 7 * k, size + 3 * k),
                                                            dtype=np.uint8)), "test")
            for k in range(count)]


def pair(reference: PatchDataset, epoch: int, batch: int):
    reference.set_epoch(epoch)
    return (list(make_loader(reference, batch)),
            list(DevicePatches(reference, "cpu").batches(epoch, batch)))


AWGN = {"type": "awgn", "sigma": [15, 50]}


@pytest.mark.parametrize("augment, cover", [(True, False), (False, False), (True, True)])
def test_crops_and_transforms_equal_the_reference(augment, cover):
    reference = PatchDataset(images(), 24, Degradation.from_spec(AWGN), 48, seed=7,
                             augment=augment, cover=cover)
    for epoch in (0, 3):
        numpy_batches, device_batches = pair(reference, epoch, 8)
        assert len(numpy_batches) == len(device_batches) == 6
        for (_, expected), (_, got) in zip(numpy_batches, device_batches):
            assert got.dtype == torch.float32 and got.shape == (8, 1, 24, 24)
            assert torch.equal(got, expected)


def test_rescaled_patches_equal_pillows_within_rounding():
    reference = PatchDataset(images(), 24, Degradation.from_spec(AWGN), 64, seed=1,
                             rescale=(0.8, 1.2))
    numpy_batches, device_batches = pair(reference, 2, 16)
    differences = torch.cat([(got - expected).abs().flatten(1).amax(1)
                             for (_, expected), (_, got) in zip(numpy_batches, device_batches)])
    assert float(differences.max()) < 1e-5
    assert 10 < int((differences > 0).sum()) < 54  # about half the items were resized


def test_jpeg_inputs_and_real_noise_pairs_equal_the_reference():
    jpeg = PatchDataset(images(), 32, Degradation.from_spec({"type": "jpeg", "quality": [10, 40]}),
                        16, seed=2)
    for (noisy, clean), (got_noisy, got_clean) in zip(*pair(jpeg, 1, 8)):
        assert torch.equal(got_clean, clean) and torch.equal(got_noisy, noisy)
    clean_images, noisy_images = images(4, seed=1), images(4, seed=2)
    pairs = [NamedImage(c.name, c.pixels, "test", noisy=n.pixels)
             for c, n in zip(clean_images, noisy_images)]
    paired = PatchDataset(pairs, 24, Degradation.from_spec(AWGN), 16, seed=3)
    for (noisy, clean), (got_noisy, got_clean) in zip(*pair(paired, 0, 8)):
        assert torch.equal(got_clean, clean) and torch.equal(got_noisy, noisy)


def test_awgn_has_the_reference_sigma_per_item_and_independent_draws():
    reference = PatchDataset(images(), 40, Degradation.from_spec(AWGN), 128, seed=5)
    numpy_batches, device_batches = pair(reference, 1, 32)
    expected = torch.cat([(n - c).flatten(1) for n, c in numpy_batches])  # (128, 1600)
    got = torch.cat([(n - c).flatten(1) for n, c in device_batches])
    sigma = expected.std(dim=1)  # 15/255 or 50/255 per item (sample spread about 2%)
    near = torch.minimum((sigma * 255 / 15 - 1).abs(), (sigma * 255 / 50 - 1).abs())
    assert float(near.max()) < 0.08 and 20 < int((sigma * 255 < 30).sum()) < 108
    ratio = got.std(dim=1) / sigma
    assert float((ratio - 1).abs().max()) < 0.1
    standard = got / sigma[:, None]
    assert abs(float(standard.mean())) < 0.01 and abs(float(standard.std()) - 1) < 0.01
    assert not torch.equal(got, expected)  # another generator: not the reference's values
    correlation = torch.corrcoef(standard[:64])  # items' noises uncorrelated
    assert float((correlation - torch.eye(64)).abs().max()) < 0.15


def test_an_item_depends_only_on_seed_epoch_and_index():
    reference = PatchDataset(images(), 24, Degradation.from_spec(AWGN), 24, seed=9,
                             rescale=True)
    by_eight = torch.cat([n for n, _ in DevicePatches(reference, "cpu").batches(4, 8)])
    by_three = torch.cat([n for n, _ in DevicePatches(reference, "cpu").batches(4, 3)])
    assert torch.equal(by_eight, by_three)
    other_epoch = torch.cat([n for n, _ in DevicePatches(reference, "cpu").batches(5, 8)])
    assert not torch.equal(by_eight, other_epoch)


def test_eight_bit_images_are_held_as_uint8_and_others_as_float():
    held = DevicePatches(PatchDataset(images(2), 24, Degradation.from_spec(AWGN), 8, seed=0),
                         "cpu")
    assert {t.dtype for t in held.clean} == {torch.uint8}
    grey = [NamedImage("g", np.full((32, 32, 1), 0.3, np.float32), "test")]
    held = DevicePatches(PatchDataset(grey, 24, Degradation.from_spec(AWGN), 8, seed=0), "cpu")
    assert held.clean[0].dtype == torch.float32


def test_the_study_key_chooses_the_pipeline():
    from studyspec.schema import DataSpec

    data = DataSpec(train="embedded", patch_size=24, noise=AWGN)
    assert data.pipeline == "device"
    made = patch_batches(images(), data, 4, 2, seed=0, num_workers=0, device=torch.device("cpu"))
    numpy = patch_batches(images(), data.model_copy(update={"pipeline": "numpy"}), 4, 2, seed=0,
                          num_workers=0, device=torch.device("cpu"))
    device_noisy = [n for n, _ in made(0)]
    numpy_noisy = [n for n, _ in numpy(0)]
    assert len(device_noisy) == len(numpy_noisy) == 2
    assert not any(torch.equal(a, b) for a, b in zip(device_noisy, numpy_noisy))
