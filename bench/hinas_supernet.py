"""Shared pieces of the HiNAS benchmarks: the journal's search supernet, one training step,
its peak memory (the profiler's allocation timeline) and its time.

The search configuration is the journal's (IJCV 2022, Secs. 3.2 and 4.1): 3 layers, 3 width levels
(gamma 1, 1.5, 2), 4 nodes, W = 10, 64 stem channels, batch 6 of 64 x 64 patches (the
official code's batch). Smaller sizes keep the structure (3 layers x 3 levels, so 14
cell runs against 8) and shrink the batch and patches.
"""

from __future__ import annotations

import contextlib
import statistics
import time
from collections.abc import Callable, Iterator

import torch
from torch.profiler import ProfilerActivity, profile

from searchspaces.hinas.cells import CellForm
from searchspaces.hinas.supernet import HiNASSupernet
from searchspaces.registry import get_space
from trainables.loops import tune_allocator

JOURNAL = {"num_layers": 3, "num_nodes": 4, "width": 10, "width_multipliers": [1.0, 1.5, 2.0],
           "stem_channels": 64}
SIZES = {  # batch, patch side, timed repeats, nodes
    "full": {"batch": 6, "side": 64, "repeats": 3, "num_nodes": 4},
    "quick": {"batch": 2, "side": 64, "repeats": 2, "num_nodes": 4},
    "tiny": {"batch": 1, "side": 16, "repeats": 1, "num_nodes": 2},
}
MIB = 2**20


def build(size: str, cell_sharing: bool = True, nhwc: bool = True,
          cell_form: CellForm = "stacked") -> torch.nn.Module:
    """The journal search supernet (weights seeded), in channels_last when `nhwc`; its cells
    in `cell_form` ("reference": every mixed op op by op, Eq. 1 as written)."""
    torch.manual_seed(0)
    options = {**JOURNAL, "num_nodes": SIZES[size]["num_nodes"], "cell_sharing": cell_sharing}
    parsed = get_space("hinas").parse_options(options)
    supernet = HiNASSupernet(parsed, 1, cell_form=cell_form).train()
    return supernet.to(memory_format=torch.channels_last) if nhwc else supernet


def batch(size: str) -> tuple[torch.Tensor, torch.Tensor]:
    """(noisy, clean) gray patches, (B, 1, P, P) each, fixed by a seed."""
    generator = torch.Generator().manual_seed(0)
    spec = SIZES[size]
    clean = torch.rand(spec["batch"], 1, spec["side"], spec["side"], generator=generator)
    noisy = clean + 0.1 * torch.randn(clean.shape, generator=generator)
    return noisy, clean


def train_step(model: torch.nn.Module, noisy: torch.Tensor, clean: torch.Tensor) -> None:
    """One supernet training step of the search: forward, MSE, backward (every weight and
    architecture parameter gets its gradient)."""
    model.zero_grad(set_to_none=True)
    loss = torch.nn.functional.mse_loss(model(noisy), clean)
    loss.backward()


def peak_step_bytes(model: torch.nn.Module, noisy: torch.Tensor, clean: torch.Tensor) -> int:
    """Peak of the bytes allocated during one training step (forward + backward), from the
    profiler's allocation events; parameters allocated before the step are not counted."""
    with profile(activities=[ProfilerActivity.CPU], profile_memory=True) as profiler:
        train_step(model, noisy, clean)
    events = [e for e in profiler.profiler.kineto_results.events() if e.name() == "[memory]"]
    live = peak = 0
    for event in sorted(events, key=lambda e: e.start_ns()):
        live += event.nbytes()
        peak = max(peak, live)
    return peak


def saved_for_backward_bytes(model: torch.nn.Module, noisy: torch.Tensor,
                             clean: torch.Tensor) -> int:
    """Bytes of the distinct storages autograd keeps for backward after the forward pass."""
    storages: dict[int, int] = {}

    def pack(tensor: torch.Tensor) -> torch.Tensor:
        storage = tensor.untyped_storage()
        storages[storage.data_ptr()] = storage.nbytes()
        return tensor

    model.zero_grad(set_to_none=True)
    with torch.autograd.graph.saved_tensors_hooks(pack, lambda tensor: tensor):
        loss = torch.nn.functional.mse_loss(model(noisy), clean)
    loss.backward()
    return sum(storages.values())


def interleaved_times(steps: dict[str, Callable[[], None]], repeats: int) -> dict[str, float]:
    """Median seconds per call of each step, run alternately after one warm-up call each (a
    shared, noisy machine slows both sides alike)."""
    for step in steps.values():
        step()
    times: dict[str, list[float]] = {name: [] for name in steps}
    for _ in range(repeats):
        for name, step in steps.items():
            began = time.perf_counter()
            step()
            times[name].append(time.perf_counter() - began)
    return {name: statistics.median(values) for name, values in times.items()}


@contextlib.contextmanager
def trial_process(threads: int | None = None) -> Iterator[None]:
    """What a search trial sets up (allocator, threads), with the thread count restored."""
    previous = torch.get_num_threads()
    tune_allocator()
    torch.set_num_threads(threads or previous)
    try:
        yield
    finally:
        torch.set_num_threads(previous)
