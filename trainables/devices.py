"""Device and thread selection from a trial's resources (CPU share, fractional GPU)."""

from __future__ import annotations

import contextlib
from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class Runtime:
    device: torch.device
    amp_dtype: torch.dtype | None  # autocast dtype, None = full precision
    non_blocking: bool  # asynchronous host-to-device copies (pinned memory)


def select_device(gpu_share: float, cuda_available: bool | None = None) -> torch.device:
    """CUDA when the trial holds any GPU share and CUDA exists, else CPU."""
    if cuda_available is None:
        cuda_available = torch.cuda.is_available()
    return torch.device("cuda") if gpu_share > 0 and cuda_available else torch.device("cpu")


def threads_for(cpu_share: float) -> int:
    """Intra-op threads for a trial: its whole-CPU share, at least one."""
    return max(1, int(cpu_share))


def amp_dtype_for(precision: str, device: torch.device) -> torch.dtype | None:
    """`fp32` (default), `bf16` or `fp16`; fp16 only on CUDA, bf16 on CPU or CUDA."""
    if precision == "fp32":
        return None
    if precision == "fp16":
        return torch.float16 if device.type == "cuda" else None
    if precision == "bf16":
        return torch.bfloat16
    raise ValueError(f"precision: unknown value {precision!r} (fp32, bf16 or fp16)")


def configure(cpu_share: float, gpu_share: float, precision: str = "fp32") -> Runtime:
    """Set threads and backend flags for this process; return the runtime to train with."""
    torch.set_num_threads(threads_for(cpu_share))
    device = select_device(gpu_share)
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True  # fixed patch sizes: autotune once
    return Runtime(device, amp_dtype_for(precision, device), device.type == "cuda")


def autocast(runtime: Runtime) -> contextlib.AbstractContextManager:
    if runtime.amp_dtype is None:
        return contextlib.nullcontext()
    return torch.autocast(runtime.device.type, dtype=runtime.amp_dtype)
