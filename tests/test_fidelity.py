"""Sanity anchor of the evaluator: the published DnCNN sigma-25 weights.

Zhang et al. (TIP 2017) report Set12 30.44 dB and BSD68 29.23 dB; the reference
README measures 30.43 / 29.23. The project's own evaluator, test noise included
(`degrade_for_test`: the DnCNN/KAIR draw), must land within 0.02 dB of the paper
on Set12. BSD68 (minutes on 2 CPUs) runs only with `NAS_SLOW_TESTS=1`.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest
import torch

from searchspaces.baselines import DnCNN, load_reference_dncnn
from trainables.data.images import load_folder
from trainables.loops import evaluation

SHARED = Path(
    os.environ.get("NAS_SHARED_DIR", Path(__file__).resolve().parents[1].parent / "shared")
)
WEIGHTS = SHARED / "reference" / "dncnn_sigma25.pth"
SLOW = pytest.mark.skipif(
    os.environ.get("NAS_SLOW_TESTS") != "1", reason="slow; set NAS_SLOW_TESTS=1 to run"
)
pytestmark = pytest.mark.skipif(not WEIGHTS.is_file(), reason=f"no reference weights at {WEIGHTS}")


@pytest.fixture(scope="module")
def dncnn() -> DnCNN:
    # channels_last makes the oneDNN convolutions about 1.6x faster on CPU; same numbers
    return load_reference_dncnn(WEIGHTS).to(memory_format=torch.channels_last)


def _mean_psnr(model: DnCNN, set_name: str) -> float:
    start = time.perf_counter()
    sets = {set_name: load_folder(SHARED / "datasets" / set_name, color=False)}
    metrics = evaluation.evaluate_sets(model, sets, ["sigma25"], "cpu")
    psnr = metrics[f"{set_name}/sigma25/psnr"]
    seconds = time.perf_counter() - start
    print(
        f"\n{set_name} sigma25: PSNR {psnr:.4f} dB, SSIM {metrics[f'{set_name}/sigma25/ssim']:.4f}"
        f" ({seconds:.1f} s)"
    )
    return psnr


def test_dncnn_layout_matches_reference_weights():
    reference = torch.load(WEIGHTS, map_location="cpu", weights_only=True)
    plain = DnCNN()
    assert list(plain.state_dict()) == list(reference)
    assert {key: v.shape for key, v in plain.state_dict().items()} == {
        key: v.shape for key, v in reference.items()
    }
    with_bn = DnCNN(batch_norm=True)
    assert sum(isinstance(m, torch.nn.BatchNorm2d) for m in with_bn.modules()) == 15
    assert with_bn.model[2].bias is None and with_bn.model[-1].bias is not None


@pytest.mark.slow  # a full test set through a 17-layer network
def test_set12_matches_published(dncnn):
    psnr = _mean_psnr(dncnn, "set12")
    assert abs(psnr - 30.44) <= 0.02
    assert abs(psnr - 30.43) <= 0.01  # the reference README's measurement


@pytest.mark.slow  # a full test set through a 17-layer network
@SLOW
def test_bsd68_matches_published(dncnn):
    assert abs(_mean_psnr(dncnn, "bsd68") - 29.23) <= 0.02
