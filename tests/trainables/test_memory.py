"""The meta-device memory estimate against real CPU steps, and the refusal of an arm too
large for the largest node."""

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

from orchestrator.run.memory import Limit, MemoryLimitError, checked_memory
from orchestrator.study.plan import ArmPlan
from searchspaces.baselines import dncnn_genotype
from studyspec.schema import Study
from trainables.loops.memory_study import study_memory

PROBE = Path(__file__).with_name("memory_probe.py")
# estimate / measured peak RSS; measured 0.87-1.04 (OVERHEAD included) on the cases below
LOW, HIGH = 0.6, 1.6

CASES = {
    "hinas-search": ({"search_space": {"name": "hinas", "options": {
        "num_layers": 2, "num_nodes": 3, "width": 8, "stem_channels": 16}},
        "search": {"batch_size": 4}, "data": {"patch_size": 48}}, "search", None),
    "dncnn-retrain": ({"search_space": {"name": "dncnn"}, "retrain": {"batch_size": 4},
                       "data": {"patch_size": 64}}, "retrain", dncnn_genotype().to_json()),
}


def study_of(raw: dict) -> Study:
    return Study.model_validate({"name": "memory", **raw})


def measured_peak(raw: dict, phase: str, genotype: str | None) -> int:
    args = [sys.executable, str(PROBE), json.dumps({"name": "memory", **raw}), phase]
    done = subprocess.run(args + ([genotype] if genotype else []), capture_output=True,
                          text=True, check=True, cwd=Path(__file__).resolve().parents[2])
    return json.loads(done.stdout)["peak"]


@pytest.mark.slow  # one subprocess per case measures a real step's peak memory
@pytest.mark.skipif(not Path("/proc/self/clear_refs").exists(), reason="needs Linux /proc")
@pytest.mark.parametrize("case", sorted(CASES))
def test_estimate_is_close_to_a_real_step(case):
    raw, phase, genotype = CASES[case]
    estimate = study_memory(study_of(raw), genotype, phase == "retrain")[phase].total
    measured = measured_peak(raw, phase, genotype)
    assert LOW <= estimate / measured <= HIGH, (estimate / 2**20, measured / 2**20)


def plan_of(name: str, study: Study, genotype: str | None = None) -> ArmPlan:
    return ArmPlan(name, 0, "", study, (0,), genotype, True, ())


def vm_hwm() -> int:
    with open("/proc/self/status") as status:
        return next(int(line.split()[1]) * 1024 for line in status if line.startswith("VmHWM"))


def test_a_huge_width_is_refused_in_one_line_without_allocating():
    huge = study_of({"search_space": {"name": "hinas", "options": {"width": 1024}},
                     "data": {"patch_size": 64}})
    before, began = vm_hwm(), time.perf_counter()
    with pytest.raises(MemoryLimitError) as error:
        checked_memory([plan_of("wide", huge)], Limit(8 * 2**30, "the node"))
    message = str(error.value)
    assert "\n" not in message
    assert message.startswith("arm 'wide': search needs about ")
    assert "GiB per trial" in message and "the node has 8.00 GiB" in message
    assert vm_hwm() - before < 512 * 2**20  # the supernet was never built for real
    assert time.perf_counter() - began < 30


def test_dry_run_lines_name_every_arm_and_phase():
    small = study_of({"search_space": {"name": "dncnn"}, "retrain": {"batch_size": 2},
                      "data": {"patch_size": 32}})
    lines = checked_memory([plan_of("dn", small, dncnn_genotype().to_json())],
                           Limit(2**40, "the node"))
    assert lines[0].startswith("memory per trial (estimated; the node: 1024.00 GiB)")
    assert lines[1].startswith("  dn: retrain ") and "search" not in lines[1]


def test_meta_probe_keeps_contiguous_a_copy_of_a_channels_last_tensor():
    """`.contiguous()` of an NHWC tensor (the deformable conv does it) gives NCHW strides
    under the probe as on a real device, so a reshape after it works."""
    import torch

    from trainables.loops.memory import MetaStepTracker

    x = torch.empty(2, 4, 5, 5, device="meta").contiguous(memory_format=torch.channels_last)
    with MetaStepTracker():
        copy = x.contiguous()
        assert copy.is_contiguous() and copy.reshape(4, 2, 5, 5).shape == (4, 2, 5, 5)


def test_validate_refuses_weights_alone_too_large_in_a_moment():
    """`validate`'s check (weights and optimiser state, no step) refuses the huge width with
    the floor named; the whole-step estimate of the same arm is larger still."""
    from orchestrator.run.memory import checked_weights, estimate_arms

    huge = study_of({"search_space": {"name": "hinas", "options": {"width": 1024}},
                     "data": {"patch_size": 64}})
    began = time.perf_counter()
    with pytest.raises(MemoryLimitError) as error:
        checked_weights([plan_of("wide", huge)], Limit(8 * 2**30, "the node"))
    assert time.perf_counter() - began < 10
    message = str(error.value)
    assert message.startswith("arm 'wide': search needs at least ")
    assert "its weights and optimiser state alone" in message and "\n" not in message
    small = study_of({"search_space": {"name": "hinas", "options": {"width": 4,
                                                                   "num_layers": 2}},
                      "data": {"patch_size": 32}})
    floor, = estimate_arms([plan_of("s", small)], floor=True)
    whole, = estimate_arms([plan_of("s", small)])
    assert 0 < floor.search < whole.search
