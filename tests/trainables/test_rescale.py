"""`data.rescale`: the HiNAS code's RandomRescaleCrop (data/datasets/transforms.py: with
p = 0.5 a bicubic resize by a factor drawn in [0.8, 1.2], then the crop), in the search's
and the retraining's patches; a range of one's own with `[low, high]`."""

import numpy as np
import pytest
from pydantic import ValidationError

from studyspec.fields import located
from studyspec.schema import DataSpec
from trainables.data.degradations import Degradation
from trainables.data.images import NamedImage
from trainables.data.patches import PatchDataset
from trainables.loops.parts import patch_batches

RAMP = NamedImage("ramp", np.tile(np.arange(64, dtype=np.float32) / 100, (64, 1))[..., None],
                  "test")  # (64, 64, 1): +0.01 a column


def slope(clean) -> float:
    """Mean horizontal step inside a (1, P, P) patch of the ramp: 0.01 / the rescale factor."""
    return float(clean[0, 4:-4, 5:-4].mean() - clean[0, 4:-4, 4:-5].mean())


def slopes(rescale, count: int = 40) -> list[float]:
    dataset = PatchDataset([RAMP], 16, Degradation.from_spec({"type": "awgn", "sigma": 0}),
                           count, seed=0, augment=False, rescale=rescale)
    return [slope(dataset[i][1]) for i in range(count)]


def test_half_the_patches_are_rescaled_by_a_factor_in_the_range():
    found = slopes((2.0, 2.0))
    scaled = [s for s in found if s == pytest.approx(0.005, abs=2e-4)]
    plain = [s for s in found if s == pytest.approx(0.01, abs=1e-6)]
    assert len(scaled) + len(plain) == len(found) and 10 < len(scaled) < 30


def test_the_default_range_is_the_code_s():
    found = slopes(True, 200)
    assert min(found) > 0.01 / 1.2 - 2e-4 and max(found) < 0.01 / 0.8 + 2e-4
    assert min(found) < 0.0088 and max(found) > 0.0118  # both ends are reached
    assert slopes(None) == pytest.approx([0.01] * 40, abs=1e-6)


def test_the_loops_take_the_range_from_the_study():
    data = DataSpec(train="embedded", patch_size=16, augment=False, rescale=(2.0, 2.0),
                    noise={"type": "awgn", "sigma": 0})
    batches = patch_batches([RAMP], data, 8, 5, seed=0, num_workers=0)
    found = [slope(clean) for _, cleans in batches(0) for clean in cleans]
    assert any(s == pytest.approx(0.005, abs=2e-4) for s in found)


@pytest.mark.parametrize("value, key", [([1.2, 0.8], "rescale"), ([0, 1.2], "rescale.0"),
                                        ([0.8, -1], "rescale.1")])
def test_bad_ranges_name_the_key(value, key):
    with pytest.raises(ValidationError) as caught:
        DataSpec.model_validate({"rescale": value})
    assert located(caught.value)[0] == key
