"""Peak memory of one training step, estimated before anything is allocated.

The network is built on the meta device (shapes, no storage) and one forward and
backward pass runs on meta tensors of the trial's batch and patch, under a
dispatch mode that counts the bytes of every storage while it is alive (the
activations autograd saves, gradients as they accumulate, temporaries). Added
to that: the parameters and buffers, and the optimiser state that exists from
the second step on (SGD momentum: one copy of the weights; Adam: two).

Measured against the peak resident set of two real CPU steps (`tests/trainables/
test_memory.py`: HiNAS, MoD-NAS, Superkernel supernets, DnCNN) the count is
0.62-0.77x: oneDNN scratch buffers, one-time library state and the allocator's
slack are invisible to it, so `OVERHEAD` scales it up (estimate 0.9-1.1x measured). Mixed
precision is not modelled (meta tensors are not autocast): under bf16/fp16 the
estimate is high. Time: one meta pass costs what the model's Python does, plus
the meta kernels; BatchNorm's meta kernels are Python decompositions at ~1 ms a
call, so the mode answers them itself.
"""

from __future__ import annotations

import contextlib
import weakref
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn
from torch.utils._pytree import tree_leaves

from trainables.loops.cost import TensorMemoryTracker
from trainables.loops.losses import DenoiseLoss

GIB = 2**30
OVERHEAD = 1.4  # real peak RSS over the counted bytes, from the validation in the tests
ADAM_STATES, MOMENTUM_STATES = 2, 1  # optimiser tensors per parameter tensor
_ATEN = torch.ops.aten
_HANDLERS: dict = {}  # aten op -> its shortcut (or one that declines)
_PREDICATES = {"eq", "ne", "lt", "le", "gt", "ge", "logical_and", "logical_or", "logical_not",
               "logical_xor", "isnan", "isinf", "isfinite", "signbit"}


@dataclass(frozen=True)
class StepMemory:
    """Bytes of one training step of one network."""

    weights: int  # parameters and buffers
    optimizer: int  # optimiser state (momentum, Adam moments)
    step: int  # the most bytes alive at once during forward and backward (grads included)

    @property
    def total(self) -> int:
        """The estimated peak of the trial's process, `OVERHEAD` included."""
        return round((self.weights + self.optimizer + self.step) * OVERHEAD)


@dataclass(frozen=True)
class StepShape:
    """What one step sees: a (batch, channels, patch, patch) input, the loss, the optimisers."""

    batch_size: int
    channels: int
    patch_size: int
    loss: dict[str, Any]  # a LossSpec as a dict
    optimizers: tuple[tuple[str, float], ...]  # (name, momentum) of each optimiser...
    groups: tuple[Callable[[nn.Module], list[nn.Parameter]], ...]  # ...and its parameters


class MetaStepTracker(TensorMemoryTracker):
    """`TensorMemoryTracker` for meta tensors (no data pointers: storages are told apart by
    their C++ object). Host reads of meta data (a `.tolist()` of op weights to skip zeros)
    read ones; BatchNorm gets shape-only outputs instead of its slow decomposition."""

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        out = _shortcut(func, args, kwargs)
        if out is None:
            out = func(*args, **kwargs)
        for leaf in tree_leaves(out):
            if isinstance(leaf, torch.Tensor) and leaf.is_meta:
                self._track(leaf.untyped_storage())
        return out

    def _track(self, storage: torch.UntypedStorage) -> None:
        key, nbytes = storage._cdata, storage.nbytes()
        if key in self.live or nbytes == 0:
            return
        self.live[key] = weakref.ref(storage, lambda _, key=key: self._release(key, nbytes))
        self.current += nbytes
        self.peak = max(self.peak, self.current)


def _shortcut(func, args, kwargs):
    """Outputs of ops the meta device cannot or should not run itself; None otherwise."""
    handler = _HANDLERS.get(func)
    if handler is None:
        handler = _HANDLERS[func] = _handler(func)
    return handler(func, args, kwargs)


def _handler(func):
    """The shortcut of `func` (chosen once per op)."""
    if func is _ATEN._local_scalar_dense.default:
        return lambda func, args, kwargs: 1
    if func is _ATEN._to_copy.default:
        return _host_copy
    if func is _ATEN.native_batch_norm.default:
        return _batch_norm
    if func is _ATEN.native_batch_norm_backward.default:
        return _batch_norm_backward
    if torch.Tag.pointwise in func.tags and not func._schema.is_mutable:
        name = func._schema.name.removeprefix("aten::")
        return lambda func, args, kwargs: _pointwise(name, args, kwargs)
    return lambda func, args, kwargs: None


def _host_copy(func, args, kwargs):
    """A copy of meta data to the host (`.tolist()` of op weights to skip zeros): ones."""
    device = kwargs.get("device")
    if not args[0].is_meta or device is None or torch.device(device).type == "meta":
        return None
    return torch.ones(args[0].shape, dtype=kwargs.get("dtype") or args[0].dtype, device=device)


def _batch_norm(func, args, kwargs):
    x = args[0]  # (B, C, H, W)
    return torch.empty_like(x), x.new_empty(x.shape[1]), x.new_empty(x.shape[1])


def _batch_norm_backward(func, args, kwargs):
    x, weight, masks = args[1], args[2], args[-1]
    channels, affine = x.shape[1], weight is not None
    return (torch.empty_like(x) if masks[0] else None,
            x.new_empty(channels) if masks[1] and affine else None,
            x.new_empty(channels) if masks[2] and affine else None)


def _pointwise(func_name: str, args, kwargs):
    """An elementwise op's output from shapes alone (meta's own kernels for these are Python
    references at ~0.2 ms a call): the broadcast shape, the promoted dtype, the layout of
    the largest input."""
    tensors = [a for a in tree_leaves((args, kwargs)) if isinstance(a, torch.Tensor)]
    if not tensors or not all(t.is_meta for t in tensors) or "dtype" in kwargs or \
            "memory_format" in kwargs:  # e.g. clone for .contiguous(): meta's own kernel
        return None
    largest = max(tensors, key=lambda t: t.numel())
    shape = torch.broadcast_shapes(*(t.shape for t in tensors))
    if func_name in _PREDICATES:
        dtype = torch.bool
    else:
        dtype = torch.result_type(*args[:2]) if len(args) > 1 else largest.dtype
    out = torch.empty(shape, dtype=dtype, device="meta")
    if tuple(shape) == tuple(largest.shape) and largest.dim() == 4:
        out = out.contiguous(memory_format=torch.channels_last) if \
            largest.is_contiguous(memory_format=torch.channels_last) and not \
            largest.is_contiguous() else out
    return out


def tensor_bytes(tensors) -> int:
    return sum(t.numel() * t.element_size() for t in tensors)


def optimizer_bytes(model: nn.Module, shape: StepShape) -> int:
    """State the optimisers hold after their first step: Adam two moments per weight,
    SGD one momentum buffer when momentum > 0."""
    total = 0
    for (name, momentum), group in zip(shape.optimizers, shape.groups):
        states = ADAM_STATES if name == "adam" else (MOMENTUM_STATES if momentum > 0 else 0)
        total += states * tensor_bytes(group(model))
    return total


# the initialisers of torch's own layers: on the meta device they compute nothing but cost
# most of a network's build (Python decompositions of uniform_, fill_, ... per tensor)
_INITIALISED = ((nn.modules.conv._ConvNd, "reset_parameters"), (nn.Linear, "reset_parameters"),
                (nn.modules.batchnorm._NormBase, "reset_parameters"),
                (nn.modules.batchnorm._NormBase, "reset_running_stats"))


@contextlib.contextmanager
def on_meta() -> Iterator[None]:
    """Build on the meta device, without running torch's layer initialisers (shapes and
    dtypes are all a meta network has)."""
    saved = [(cls, name, cls.__dict__[name]) for cls, name in _INITIALISED]
    for cls, name, _ in saved:
        setattr(cls, name, lambda self: None)
    try:
        with torch.device("meta"):
            yield
    finally:
        for cls, name, method in saved:
            setattr(cls, name, method)


def meta_weights_memory(build: Callable[[], nn.Module], shape: StepShape) -> StepMemory:
    """Only what the network holds before any step: its weights and optimiser state (a lower
    bound of the step's memory, for a check that must answer in a moment; `step` is 0)."""
    with on_meta():
        model = build()
    weights = tensor_bytes(model.parameters()) + tensor_bytes(model.buffers())
    return StepMemory(weights, optimizer_bytes(model, shape), 0)


def meta_step_memory(build: Callable[[], nn.Module], shape: StepShape) -> StepMemory:
    """Build the network with `build` on the meta device and count one training step."""
    with on_meta():
        model = build()
    layout = torch.channels_last if getattr(model, "prefers_nhwc", False) else None
    if layout is not None:
        model = model.to(memory_format=layout)
    model.train()
    weights = tensor_bytes(model.parameters()) + tensor_bytes(model.buffers())
    tracker = MetaStepTracker()
    with tracker:
        size = (shape.batch_size, shape.channels, shape.patch_size, shape.patch_size)
        noisy, clean = torch.empty(size, device="meta"), torch.empty(size, device="meta")
        if layout is not None:
            noisy, clean = noisy.contiguous(memory_format=layout), clean.contiguous(
                memory_format=layout)
        DenoiseLoss(**shape.loss)(model(noisy).float(), clean).backward()
    return StepMemory(weights, optimizer_bytes(model, shape), tracker.peak)
