"""Cost metrics of a derived (discrete) network, logged under `cost/*`.

- parameters: the number of scalar weights;
- FLOPs per megapixel: every multiply-add counted as 2 FLOPs by
  `torch.utils.flop_counter.FlopCounterMode` on one (1, C, 256, 256) input, scaled
  to 10^6 pixels and reported in GFLOPs (10^9);
- latency per megapixel: median wall-clock time of a forward pass after warm-up;
- peak forward memory: the most bytes held at once by tensors created during
  one forward pass (weights and input excluded), in MiB.

All forward passes run in eval mode under `torch.inference_mode()`; the model's
training flag is restored afterwards.
"""

from __future__ import annotations

import statistics
import time
import weakref

import torch
from torch import nn
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_leaves
from torch.utils.flop_counter import FlopCounterMode

from trainables.loops.evaluation import evaluation_mode

MEGAPIXEL = 1_000_000
MIB = 2**20


def count_parameters(model: nn.Module) -> int:
    """Number of scalar parameters (shared parameters counted once)."""
    return sum(parameter.numel() for parameter in model.parameters())


def _example_input(in_channels: int, size: int, device: torch.device | str) -> torch.Tensor:
    generator = torch.Generator().manual_seed(0)
    return torch.rand(1, in_channels, size, size, generator=generator).to(device)  # (1, C, S, S)


def flops_per_megapixel(model: nn.Module, in_channels: int, size: int = 256) -> float:
    """GFLOPs (2 per multiply-add) of one forward pass, per megapixel (10^6 pixels) of input."""
    device = next(model.parameters(), torch.empty(0)).device
    x = _example_input(in_channels, size, device)
    counter = FlopCounterMode(display=False)
    with evaluation_mode(model), torch.inference_mode(), counter:
        model(x)
    return counter.get_total_flops() * (MEGAPIXEL / size**2) / 1e9


def _synchronize(device: torch.device | str) -> None:
    if torch.device(device).type == "cuda":
        torch.cuda.synchronize(device)


def latency_ms_per_megapixel(
    model: nn.Module,
    in_channels: int,
    device: torch.device | str,
    size: int = 256,
    warmup: int = 2,
    repeats: int = 5,
) -> float:
    """Median wall-clock milliseconds of a forward pass on `device`, per megapixel of input."""
    x = _example_input(in_channels, size, device)
    timings = []
    with evaluation_mode(model), torch.inference_mode():
        for run in range(warmup + repeats):
            _synchronize(device)
            start = time.perf_counter()
            model(x)
            _synchronize(device)
            if run >= warmup:
                timings.append(time.perf_counter() - start)
    return statistics.median(timings) * 1e3 * (MEGAPIXEL / size**2)


class TensorMemoryTracker(TorchDispatchMode):
    """Tracks the bytes of live tensor storages created by aten ops while the mode is active.

    Each new storage is counted when an op returns it and uncounted when its Python
    object is collected (a weak reference callback); outputs sharing a storage
    (views, in-place ops) are counted once. `peak` is the maximum of the running total.
    """

    def __init__(self) -> None:
        super().__init__()
        self.live: dict[int, weakref.ref] = {}
        self.current = 0
        self.peak = 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        for leaf in tree_leaves(out):
            if isinstance(leaf, torch.Tensor):
                self._track(leaf.untyped_storage())
        return out

    def _track(self, storage: torch.UntypedStorage) -> None:
        key, nbytes = storage.data_ptr(), storage.nbytes()
        if key in self.live or nbytes == 0:
            return
        self.live[key] = weakref.ref(storage, lambda _, key=key: self._release(key, nbytes))
        self.current += nbytes
        self.peak = max(self.peak, self.current)

    def _release(self, key: int, nbytes: int) -> None:
        self.live.pop(key, None)
        self.current -= nbytes


def peak_forward_memory_mib(
    model: nn.Module, in_channels: int, device: torch.device | str, size: int = 256
) -> float:
    """Peak MiB allocated by one forward pass above what was allocated before it.

    CUDA: `torch.cuda.max_memory_allocated` after `reset_peak_memory_stats`, minus
    the memory allocated before the pass (so it includes the caching allocator's
    view of library workspaces). CPU has no allocator statistics, and process RSS
    is neither deterministic nor specific to this pass, so `TensorMemoryTracker`
    counts the tensors the pass creates: deterministic and comparable across
    architectures, but blind to scratch buffers a kernel (e.g. oneDNN) allocates
    internally, so it is a lower bound of the true peak.
    """
    x = _example_input(in_channels, size, device)
    with evaluation_mode(model), torch.inference_mode():
        if torch.device(device).type == "cuda":
            return _cuda_peak_bytes(model, x, device) / MIB
        tracker = TensorMemoryTracker()
        with tracker:
            model(x)
    return tracker.peak / MIB


def _cuda_peak_bytes(model: nn.Module, x: torch.Tensor, device: torch.device | str) -> int:
    torch.cuda.synchronize(device)
    before = torch.cuda.memory_allocated(device)
    torch.cuda.reset_peak_memory_stats(device)
    model(x)
    torch.cuda.synchronize(device)
    return torch.cuda.max_memory_allocated(device) - before


def cost_metrics(
    model: nn.Module,
    in_channels: int,
    device: torch.device | str,
    size: int = 256,
    repeats: int = 5,
) -> dict[str, float]:
    """All the cost metrics of this module, keyed as logged under `cost/`."""
    return {
        "params": count_parameters(model),
        "gflops_per_mp": flops_per_megapixel(model, in_channels, size),
        "latency_ms_per_mp": latency_ms_per_megapixel(
            model, in_channels, device, size, repeats=repeats
        ),
        "peak_mem_mib": peak_forward_memory_mib(model, in_channels, device, size),
    }
