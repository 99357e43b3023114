"""Superkernel "full" vs "separate" training-step time (Mozejko et al. 2020, Sec. 4.5).

The paper replaces the n_k x n_f convolutions of the relaxed superkernel (one per
candidate slice, Eq. 3) by ONE convolution with the expected mask (Eq. 4). This
measures both sides of that on the running CPU, in one run: a stack of joint
superkernel layers (3 kernel sizes {3, 5, 7} x 3 widths {F/4, F/2, F}, 9
candidates per layer; at size "full" the paper's 128 x 128 patches, batch 4, 64
channels), a supernet training step (forward, MSE backward, Adam step) per
variant, in channels_last and at the thread count of a search trial of the
shipped superkernel studies (`resources.search.cpu: 1`, so one thread:
`trainables.loops.devices.threads_for`), as the search loop runs them. (At 2 threads
on a shared 2-core machine "separate" suffers more than "full": each of its many
smaller operations waits at its barrier for a descheduled thread; measured at
load 3-4: 1.95 at 2 threads against 1.28 at one.) Other jobs' load comes and
goes within seconds, so every figure is the median of paired ratios: a step of
the variant and a step of "full" timed back to back (alternating which goes
first), several pairs per round, rounds repeated; a burst of load spoils a pair,
not the figure. The fastest step of each variant and the load average before and
after are in the detail.

- The value (headline, target: at most 1.3) is the product's exact "separate"
  over "full": what the exact mode costs. It computes the K^2 taps of the
  maximal kernel once, as "full" does (operations.py: the widths of a kernel size
  share its convolution, and the kernel sizes are running sums of rings), so its
  extra cost is the rings' smaller convolutions and one activation per kernel size.
- `masked_per_candidate_over_full` (target: at least 5, `detail_targets`) is the
  paper's argument for Eq. 4: Eq. 3 computed per candidate with the maximal kernel
  masked to its slice, S * I_{k,f}, against "full".

The detail adds the other exact forms "separate" replaced, for comparison:

- per_kernel_size: one k x k convolution per kernel size, shared by its widths
  (sum(k^2) F = 83 F multiply-adds against 49 F: 1.69x);
- per_candidate: Eq. 3 term by term, each candidate with its own k x k kernel and
  f filters (sum(k^2) * sum(f) = 83 * 1.75 F: 2.96x);
- masked_per_candidate: Eq. 3 as Sec. 4.5.2 reparametrises the slices, each
  candidate the maximal kernel masked to its slice, S * I_{k,f} (9x the FLOPs).
"""

from __future__ import annotations

import os
import statistics
import sys
import time

import torch
import torch.nn.functional as F
from torch import nn

from searchspaces.superkernel.operations import SuperConv2d
from trainables.loops import threads_for

SEPARATE_TARGET = 1.3  # at most: "separate" / "full", the headline
MASKED_TARGET = 5.0  # at least: masked per-candidate Eq. 3 / "full", the paper's argument
KERNEL_SIZES = (3, 5, 7)
GROWTH_RATES = (0.25, 0.5, 1.0)
SIZES = {  # channels F, image side, batch, layers, timed rounds
    "tiny": {"channels": 8, "side": 16, "batch": 1, "layers": 2, "repeats": 3},
    "quick": {"channels": 32, "side": 64, "batch": 2, "layers": 3, "repeats": 5},
    "full": {"channels": 64, "side": 128, "batch": 4, "layers": 3, "repeats": 7},  # paper patches
}
HEADLINE_PAIRS = 3  # "separate"/"full" pairs per round (one for the slower variants)
TRIAL_CPUS = 1  # resources.search.cpu of studies/superkernel.yaml and ablations.yaml


class PerKernelSizeConv2d(SuperConv2d):
    """One convolution per kernel size k, all F filters, its widths as channel scales."""

    def _separate(self, x: torch.Tensor, weights: torch.Tensor, patterns: torch.Tensor):
        scales = weights @ patterns  # (n_k, F)
        terms = [self.window_conv(x, k) * scales[i][None, :, None, None]
                 for i, k in enumerate(self.kernel_sizes)]
        return torch.stack(terms).sum(0)


class PerCandidateConv2d(SuperConv2d):
    """Eq. 3 term by term: one convolution per candidate with its own k x k, f slice."""

    def _separate(self, x: torch.Tensor, weights: torch.Tensor, patterns: torch.Tensor):
        return self.candidate_terms(x, weights, patterns)


class MaskedCandidateConv2d(SuperConv2d):
    """Eq. 3 as Sec. 4.5.2 reparametrises it: one convolution per candidate with the
    maximal kernel masked to its slice, S * I_{k,f} (same numbers, K^2 F FLOPs each)."""

    def _separate(self, x: torch.Tensor, weights: torch.Tensor, patterns: torch.Tensor):
        padding = max(self.kernel_sizes) // 2
        out = None
        for kernel_index, spatial in enumerate(self.spatial_masks):  # (K, K)
            for pattern_index, pattern in enumerate(patterns):  # (F,)
                kernel = self.weight * (pattern[:, None, None, None] * spatial)  # (F, C, K, K)
                term = self.activation(F.conv2d(x, kernel, self.bias * pattern, padding=padding))
                term = weights[kernel_index, pattern_index] * term
                out = term if out is None else out + term
        return out


VARIANTS = {  # bench name -> (layer class, SuperConv2d mode)
    "full": (SuperConv2d, "full"),
    "separate": (SuperConv2d, "separate"),
    "per_kernel_size": (PerKernelSizeConv2d, "separate"),
    "per_candidate": (PerCandidateConv2d, "separate"),
    "masked_per_candidate": (MaskedCandidateConv2d, "separate"),
}


def layer_stack(variant: str, channels: int, layers: int) -> nn.Sequential:
    """`layers` joint superkernel layers F -> F, same initial weights for every variant,
    in channels_last (the layout the search loop gives this supernet on CPU)."""
    torch.manual_seed(0)
    counts = tuple(max(1, round(rate * channels)) for rate in GROWTH_RATES)
    layer, mode = VARIANTS[variant]
    stack = nn.Sequential(
        *[layer(channels, KERNEL_SIZES, counts, "joint", mode) for _ in range(layers)]
    )
    return stack.to(memory_format=torch.channels_last)


def flop_ratios(channels: int) -> dict[str, float]:
    """Convolution multiply-adds of each variant over "full", for one layer."""
    counts = [max(1, round(rate * channels)) for rate in GROWTH_RATES]
    full = max(KERNEL_SIZES) ** 2 * max(counts)
    squares = sum(k * k for k in KERNEL_SIZES)
    return {
        "separate": 1.0,
        "per_kernel_size": squares * max(counts) / full,
        "per_candidate": squares * sum(counts) / full,
        "masked_per_candidate": float(len(KERNEL_SIZES) * len(counts)),
    }


def train_step(model: nn.Module, optimizer, image: torch.Tensor, target: torch.Tensor) -> float:
    """Seconds for one forward + backward + optimiser step."""
    began = time.perf_counter()
    optimizer.zero_grad(set_to_none=True)
    F.mse_loss(model(image), target).backward()
    optimizer.step()
    return time.perf_counter() - began


def superkernel_full_vs_separate_speedup(size: str = "quick") -> dict:
    """Training-step time of "separate" over "full" (target: at most 1.3), and in the
    detail masked per-candidate Eq. 3 over "full" (target: at least 5): medians of
    back-to-back pairs."""
    if size not in SIZES:
        raise ValueError(f"size: expected one of {', '.join(SIZES)}, got {size!r}")
    spec = SIZES[size]
    channels, side = spec["channels"], spec["side"]
    models = {name: layer_stack(name, channels, spec["layers"]) for name in VARIANTS}
    optimizers = {name: torch.optim.Adam(m.parameters(), lr=2e-5) for name, m in models.items()}
    generator = torch.Generator().manual_seed(0)
    image = torch.randn(spec["batch"], channels, side, side, generator=generator)  # (B, F, S, S)
    image = image.contiguous(memory_format=torch.channels_last)
    target = torch.randn(image.shape, generator=generator)

    def step(name: str) -> float:
        return train_step(models[name], optimizers[name], image, target)

    threads = torch.get_num_threads()
    torch.set_num_threads(threads_for(TRIAL_CPUS))
    try:
        for name in VARIANTS:  # warm-up
            step(name)
        load_before = os.getloadavg()[0]
        times, ratios = paired_times(step, spec["repeats"])
        trial_threads = torch.get_num_threads()
    finally:
        torch.set_num_threads(threads)
    over_full = {name: statistics.median(values) for name, values in ratios.items()}
    return {
        "name": "superkernel_full_vs_separate_speedup",
        "value": over_full["separate"],
        "unit": "ratio",
        "target": SEPARATE_TARGET,
        "detail": {
            "detail_targets": {"masked_per_candidate_over_full": MASKED_TARGET},
            "size": size, **spec, "kernel_sizes": list(KERNEL_SIZES),
            "growth_rates": list(GROWTH_RATES), "candidates_per_layer": 9,
            **{f"{name}_over_full": ratio for name, ratio in over_full.items()},
            "pairs": {name: len(values) for name, values in ratios.items()},
            **{f"{name}_step_ms": 1000 * min(values) for name, values in times.items()},
            "load_average_1min": [round(load_before, 2), round(os.getloadavg()[0], 2)],
            "conv_flops_over_full": flop_ratios(channels),
            "threads": trial_threads,
        },
    }


def paired_times(step, rounds: int) -> tuple[dict[str, list[float]], dict[str, list[float]]]:
    """Step times per variant, and per variant other than "full" the ratios of its
    steps over a "full" step taken right before or after (alternating)."""
    times: dict[str, list[float]] = {name: [] for name in VARIANTS}
    ratios: dict[str, list[float]] = {name: [] for name in VARIANTS if name != "full"}
    flip = False
    for _ in range(rounds):
        for name in ratios:
            for _ in range(HEADLINE_PAIRS if name == "separate" else 1):
                flip = not flip
                first, second = (name, "full") if flip else ("full", name)
                elapsed = {first: step(first), second: step(second)}
                times[name].append(elapsed[name])
                times["full"].append(elapsed["full"])
                ratios[name].append(elapsed[name] / elapsed["full"])
    return times, ratios


if __name__ == "__main__":
    print(superkernel_full_vs_separate_speedup(sys.argv[1] if len(sys.argv) > 1 else "quick"))
