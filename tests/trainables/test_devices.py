"""Device, precision, layout and thread selection (trainables/loops/devices.py) on a CPU-only
machine: every GPU path is checked through its selection logic, and a tiny search runs in
bf16 on CPU."""

from __future__ import annotations

import math

import pytest
import torch

from orchestrator.study.reading import validate
from searchspaces.registry import get_space
from trainables.data.bundles import SearchData
from trainables.data.embedded import embedded_images
from trainables.loops import devices
from trainables.loops import search as search_loop
from trainables.loops.search import run_search

CPU, CUDA = torch.device("cpu"), torch.device("cuda")
TINY = {
    "name": "tiny",
    "data": {"patch_size": 16, "noise": {"type": "awgn", "sigma": 25}},
    "search_space": {"name": "hinas",
                     "options": {"num_layers": 2, "num_nodes": 2, "width": 3, "stem_channels": 4}},
    "search": {"epochs": 2, "steps_per_epoch": 2, "batch_size": 2, "warmup_epochs": 1,
               "validate_from_epoch": 1, "val_crop": 24},
}


@pytest.fixture
def restore_threads():
    threads = torch.get_num_threads()
    yield
    torch.set_num_threads(threads)


@pytest.mark.parametrize("share, available, expected", [
    (0, True, CPU), (0.5, True, CUDA), (1, True, CUDA), (0.5, False, CPU), (0, False, CPU)])
def test_select_device(share, available, expected):
    assert devices.select_device(share, cuda_available=available) == expected


def test_select_device_without_cuda_here():
    assert devices.select_device(1).type == ("cuda" if torch.cuda.is_available() else "cpu")


@pytest.mark.parametrize("share, threads", [(0.25, 1), (1, 1), (1.5, 1), (2, 2), (3.9, 3)])
def test_threads_follow_the_whole_cpu_share(share, threads):
    assert devices.threads_for(share) == threads


@pytest.mark.parametrize("precision, device, dtype", [
    ("fp32", CPU, None), ("fp32", CUDA, None), ("bf16", CPU, torch.bfloat16),
    ("bf16", CUDA, torch.bfloat16), ("fp16", CPU, None), ("fp16", CUDA, torch.float16)])
def test_amp_dtype(precision, device, dtype):
    assert devices.amp_dtype_for(precision, device) == dtype


def test_unknown_precision_is_named():
    with pytest.raises(ValueError, match="precision"):
        devices.amp_dtype_for("fp8", CPU)


@pytest.mark.parametrize("device, dtype, expected", [
    (CPU, None, True), (CPU, torch.bfloat16, True), (CUDA, None, False),
    (CUDA, torch.float16, True), (CUDA, torch.bfloat16, True)])
def test_channels_last_choice(device, dtype, expected):
    assert devices.channels_last_for(device, dtype) is expected


def test_memory_format_needs_runtime_and_model():
    nhwc = devices.Runtime(CPU, None, False, channels_last=True)
    nchw = devices.Runtime(CUDA, None, True, channels_last=False)
    supernet = get_space("hinas").build_supernet(get_space("hinas").tiny_options(), 1)
    assert devices.memory_format(nhwc, supernet) == torch.channels_last
    assert devices.memory_format(nchw, supernet) == torch.contiguous_format
    assert devices.memory_format(nhwc, torch.nn.Conv2d(1, 1, 1)) == torch.contiguous_format
    for name in ("hinas", "modnas", "superkernel"):  # derived networks retrain in NHWC too
        space = get_space(name)
        options = space.tiny_options()
        derived = space.build_derived(space.build_supernet(options, 1).derive(), options, 1)
        assert devices.memory_format(nhwc, derived) == torch.channels_last, name


def test_configure_cpu_bf16(restore_threads):
    runtime = devices.configure(1.5, 0, "bf16")
    assert runtime == devices.Runtime(CPU, torch.bfloat16, False, True)
    assert torch.get_num_threads() == 1
    with devices.autocast(runtime):
        assert torch.is_autocast_enabled("cpu")
    with devices.autocast(devices.configure(1, 0)):
        assert not torch.is_autocast_enabled("cpu")


def test_allocator_tuning_is_safe_to_repeat():
    assert devices.tune_allocator() == devices.tune_allocator()


def search_data():
    images = embedded_images("train", color=False)[:4]
    return SearchData(train_w=images[:2], train_a=images[2:3], val=images[3:])


def test_loaders_pin_memory_exactly_when_copies_are_asynchronous(monkeypatch):
    """CUDA runtimes (non_blocking) pin the DataLoader memory; CPU runtimes do not."""
    seen = []
    real = search_loop.patch_batches

    def spy(*args, pin_memory=False, **kwargs):
        seen.append(pin_memory)
        return real(*args, **kwargs)  # this CPU machine cannot pin

    monkeypatch.setattr(search_loop, "patch_batches", spy)
    study = validate({**TINY, "search": {**TINY["search"], "epochs": 1, "warmup_epochs": 0,
                                         "validate_from_epoch": 0}})
    run_search(study, search_data(), lambda *report: None, devices.Runtime(CPU, None, True))
    run_search(study, search_data(), lambda *report: None, devices.configure(1, 0))
    assert seen == [True, True, False, False]


def test_the_search_makes_its_patches_where_it_trains_unless_the_study_says_numpy(monkeypatch):
    """`data.pipeline` reaches the loop: device patches (made on the runtime's device) by
    default, the numpy loader with `pipeline: numpy`."""
    import trainables.loops.parts as parts

    made = []
    real = parts.DevicePatches

    def spy(dataset, device):
        made.append(str(device))
        return real(dataset, device)

    monkeypatch.setattr(parts, "DevicePatches", spy)
    base = {**TINY, "search": {**TINY["search"], "epochs": 1, "warmup_epochs": 0,
                               "validate_from_epoch": 0}}
    run_search(validate(base), search_data(), lambda *report: None, devices.configure(1, 0))
    assert made == ["cpu", "cpu"]  # Train-W and Train-A
    numpy = {**base, "data": {**base.get("data", {}), "pipeline": "numpy"}}
    run_search(validate(numpy), search_data(), lambda *report: None, devices.configure(1, 0))
    assert made == ["cpu", "cpu"]


def test_tiny_search_in_bf16_on_cpu(restore_threads):
    study = validate({**TINY, "precision": "bf16"})
    runtime = devices.configure(1, 0, study.precision)
    losses = []
    genotype = run_search(study, search_data(),
                          lambda epoch, metrics, state: losses.append(metrics["train/loss"]),
                          runtime)
    assert len(losses) == 2 and all(math.isfinite(loss) for loss in losses)
    assert genotype.space == "hinas"


PEAK_PROBE = """
import torch
from trainables.loops.devices import configure, peak_memory_mib, reset_peak_memory
runtime = configure(1, 0)
block = torch.ones(64 * 2**20)  # 256 MiB touched
before = peak_memory_mib(runtime)
del block
reset_peak_memory(runtime)
print(before, peak_memory_mib(runtime))
"""


def test_peak_memory_restarts_for_each_trial_in_a_reused_worker():
    """In a fresh process (a long one may hold a free heap block the probe's tensor reuses,
    resident before and after)."""
    import subprocess
    import sys

    if not sys.platform.startswith("linux"):
        import pytest

        pytest.skip("peak resident set is reset through /proc")
    out = subprocess.run([sys.executable, "-c", PEAK_PROBE], capture_output=True, text=True,
                         check=True).stdout
    before, after = map(float, out.split())
    assert after < before - 200
