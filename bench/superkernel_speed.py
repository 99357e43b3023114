"""Superkernel "full" vs "separate" training-step time (Mozejko et al. 2020, Sec. 4.5.2).

The paper replaces the n_k x n_f convolutions of the relaxed superkernel (one per
candidate slice, Eq. 3) by ONE convolution with the expected mask (Eq. 4). This
measures what that buys on the running CPU: a stack of joint superkernel layers
(3 kernel sizes {3, 5, 7} x 3 widths {F/4, F/2, F}, 9 candidates per layer), a
supernet training step (forward, MSE backward, Adam step) in each mode, the two
modes interleaved in one process (alternating which goes first) and the median
of the repeats compared. The value is separate / full: how many times faster
the "full" mode is.

"separate" convolves each candidate with its own k x k kernel and f filters, so
its FLOPs are sum(k^2) * sum(f) = 83 * 1.75 F against 49 F for "full": a
FLOP ratio of 2.96 (reported in the detail); the rest of the measured ratio is
the overhead of 9 small convolutions, activations and paddings per layer.
The detail also times the paper's literal Eq. 3, where every candidate is the
maximal superkernel masked by its slice (S * I_{k,f}, Sec. 4.5.2): 9 full-size
convolutions per layer, the cost the paper's mask trick was designed to avoid.
"""

from __future__ import annotations

import statistics
import sys
import time

import torch
import torch.nn.functional as F
from torch import nn

from searchspaces.superkernel.superconv import SuperConv2d

KERNEL_SIZES = (3, 5, 7)
GROWTH_RATES = (0.25, 0.5, 1.0)
SIZES = {  # channels F, image side, batch, layers, timed repeats
    "tiny": {"channels": 8, "side": 16, "batch": 1, "layers": 2, "repeats": 3},
    "quick": {"channels": 32, "side": 64, "batch": 2, "layers": 3, "repeats": 5},
    "full": {"channels": 64, "side": 128, "batch": 4, "layers": 3, "repeats": 5},  # paper patches
}


class MaskedSliceConv2d(SuperConv2d):
    """"separate" as the paper writes Eq. 3: each candidate convolves with the maximal
    kernel masked to its slice (same numbers as the sliced candidate, more FLOPs)."""

    def candidate(self, x: torch.Tensor, kernel_size: int, filters: int) -> torch.Tensor:
        spatial = self.spatial_masks[self.kernel_sizes.index(kernel_size)]  # (K, K)
        rows = (torch.arange(self.out_channels, device=x.device) < filters).to(x.dtype)  # (F,)
        kernel = self.weight * (rows[:, None, None, None] * spatial)  # (F, C, K, K)
        padding = max(self.kernel_sizes) // 2
        return F.relu(F.conv2d(x, kernel, self.bias * rows, padding=padding))  # (B, F, H, W)


def layer_stack(mode: str, channels: int, layers: int) -> nn.Sequential:
    """`layers` joint superkernel layers F -> F, same initial weights for every mode."""
    torch.manual_seed(0)
    counts = tuple(max(1, round(rate * channels)) for rate in GROWTH_RATES)
    layer = MaskedSliceConv2d if mode == "eq3" else SuperConv2d
    conv_mode = "separate" if mode == "eq3" else mode
    return nn.Sequential(
        *[layer(channels, KERNEL_SIZES, counts, "joint", conv_mode) for _ in range(layers)]
    )


def flop_ratio(channels: int) -> float:
    """Convolution FLOPs of "separate" over "full" for one layer (multiply-adds)."""
    counts = [max(1, round(rate * channels)) for rate in GROWTH_RATES]
    separate = sum(k * k for k in KERNEL_SIZES) * sum(counts)
    return separate / (max(KERNEL_SIZES) ** 2 * max(counts))


def train_step(model: nn.Module, optimizer, image: torch.Tensor, target: torch.Tensor) -> float:
    """Seconds for one forward + backward + optimiser step."""
    began = time.perf_counter()
    optimizer.zero_grad(set_to_none=True)
    F.mse_loss(model(image), target).backward()
    optimizer.step()
    return time.perf_counter() - began


def superkernel_full_vs_separate_speedup(size: str = "quick") -> dict:
    """Median training-step time of "separate" over "full" (target: at least 5)."""
    if size not in SIZES:
        raise ValueError(f"size: expected one of {', '.join(SIZES)}, got {size!r}")
    spec = SIZES[size]
    channels, side = spec["channels"], spec["side"]
    modes = ("full", "separate", "eq3")
    models = {mode: layer_stack(mode, channels, spec["layers"]) for mode in modes}
    optimizers = {mode: torch.optim.Adam(m.parameters(), lr=2e-5) for mode, m in models.items()}
    generator = torch.Generator().manual_seed(0)
    image = torch.randn(spec["batch"], channels, side, side, generator=generator)  # (B, F, S, S)
    target = torch.randn(image.shape, generator=generator)
    times: dict[str, list[float]] = {mode: [] for mode in modes}
    for repeat in range(spec["repeats"] + 1):  # the first round is warm-up
        order = modes if repeat % 2 else modes[::-1]
        for mode in order:
            elapsed = train_step(models[mode], optimizers[mode], image, target)
            if repeat:
                times[mode].append(elapsed)
    medians = {mode: statistics.median(values) for mode, values in times.items()}
    return {
        "name": "superkernel_full_vs_separate_speedup",
        "value": medians["separate"] / medians["full"],
        "unit": "ratio",
        "target": 5.0,
        "detail": {
            "size": size, **spec, "kernel_sizes": list(KERNEL_SIZES),
            "growth_rates": list(GROWTH_RATES), "candidates_per_layer": 9,
            "full_step_ms": 1000 * medians["full"],
            "separate_step_ms": 1000 * medians["separate"],
            "eq3_masked_separate_step_ms": 1000 * medians["eq3"],
            "eq3_masked_separate_over_full": medians["eq3"] / medians["full"],
            "conv_flop_ratio": flop_ratio(channels),
            "threads": torch.get_num_threads(),
        },
    }


if __name__ == "__main__":
    print(superkernel_full_vs_separate_speedup(sys.argv[1] if len(sys.argv) > 1 else "quick"))
