"""The superkernel convolution (Mozejko et al. 2020, Secs. 4.1 and 4.5).

One maximal kernel (F filters of K x K, K the largest candidate kernel size)
and its bias are shared by every candidate slice S_{k,f}: the centred k x k
sub-kernel of the first f filters (or of the filters a Bernoulli mask keeps).
The module computes act(conv) with the slice drawn from its structural
distribution, act ReLU (default) or PReLU, in one of two modes:

- "full" (Sec. 4.5.2, Eq. 4; the default): ONE convolution with the maximal
  kernel times the expected mask sum_s g_s M_s. The bias is masked likewise
  with sum_s g_s m_s, m_s the filter indicator of slice s (Sec. 4.5.4: the
  kernel mask reduced over all but the filter dimension). Exact for the
  convolution itself; the activation that follows makes it an approximation of
  Eq. 3.
- "separate" (Sec. 4.5.3, the LHS of Eq. 5): sum_s g_s act(conv(S_s, x)), every
  candidate through its own activation, exact, at the convolution cost of "full":
  * the f-candidates of one kernel size k share one convolution: the slice with
    the first f filters outputs the first f channels of the k x k convolution
    with all F filters, and the activation acts per channel, so their weights
    fold into a per-channel scale sum_p g_{k,p} patterns[p] (a soft Bernoulli
    mask likewise: ReLU and PReLU are positively homogeneous, act(a y) = a act(y)
    for a >= 0);
  * the kernel sizes share their taps: the k x k convolution is the smallest
    window's convolution plus the rings of radius k_min//2 + 1 .. k//2 around it,
    each ring two dilated convolutions (its top and bottom rows, its left and
    right columns). The pre-activation of every k is a running sum taken before
    its activation, so all K^2 taps are computed once, as in "full".
  `candidate_terms` keeps the one-convolution-per-candidate form as the
  reference the tests compare against.

With a one-hot distribution the two modes compute the same function.
"""

from __future__ import annotations

import itertools
import math

import torch
import torch.nn.functional as F
from torch import nn

from searchspaces.superkernel.blocks import activation_layer
from searchspaces.superkernel.distributions import StructuralDistribution, make_distribution

MODES = ("full", "separate")


def centred_masks(kernel_sizes: tuple[int, ...]) -> torch.Tensor:
    """(n_k, K, K) spatial masks: ones on the centred k x k window of a K x K kernel."""
    size = max(kernel_sizes)
    masks = torch.zeros(len(kernel_sizes), size, size)
    for index, kernel in enumerate(kernel_sizes):
        start = (size - kernel) // 2
        masks[index, start : start + kernel, start : start + kernel] = 1.0
    return masks


class SuperConv2d(nn.Module):
    """act(conv) whose kernel size and filters are searched with a superkernel."""

    def __init__(
        self,
        in_channels: int,
        kernel_sizes: tuple[int, ...],
        filter_counts: tuple[int, ...],
        distribution: str,
        mode: str = "full",
        key_dim: int = 4,
        slot_name: str = "",
        activation: str = "relu",
    ) -> None:
        super().__init__()
        if mode not in MODES:
            raise ValueError(f"unknown superkernel mode {mode!r} (known: {', '.join(MODES)})")
        self.kernel_sizes = tuple(kernel_sizes)
        self.mode = mode
        self.slot_name = slot_name  # the genotype key of this slot
        self.out_channels = max(filter_counts)
        size = max(kernel_sizes)
        self.weight = nn.Parameter(torch.empty(self.out_channels, in_channels, size, size))
        self.bias = nn.Parameter(torch.empty(self.out_channels))
        self._reset_parameters()
        self.distribution: StructuralDistribution = make_distribution(
            distribution, len(kernel_sizes), tuple(filter_counts), key_dim
        )
        self.register_buffer("spatial_masks", centred_masks(self.kernel_sizes), persistent=False)
        self.activation = activation_layer(activation)  # ReLU or PReLU, after every candidate

    def _reset_parameters(self) -> None:
        """The default initialisation of nn.Conv2d, for the maximal kernel."""
        nn.init.kaiming_uniform_(self.weight, a=math.sqrt(5))
        bound = 1 / math.sqrt(self.weight[0].numel())
        nn.init.uniform_(self.bias, -bound, bound)

    def expected_mask(
        self, weights: torch.Tensor, patterns: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Kernel mask (F, K, K) = sum_{k,p} w[k,p] S_k (x) P_p and bias mask (F,)."""
        kernel = torch.einsum("kp,pf,kij->fij", weights, patterns, self.spatial_masks)
        return kernel, weights.sum(0) @ patterns

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        weights, patterns = self.distribution.relaxed()  # (n_k, P), (P, F)
        if self.mode == "full":
            return self._full(x, weights, patterns)
        return self._separate(x, weights, patterns)

    def _full(self, x: torch.Tensor, weights: torch.Tensor, patterns: torch.Tensor):
        kernel_mask, bias_mask = self.expected_mask(weights, patterns)
        kernel = self.weight * kernel_mask[:, None]  # (F, C, K, K)
        padding = max(self.kernel_sizes) // 2
        out = F.conv2d(x, kernel, self.bias * bias_mask, padding=padding)  # (B, F, H, W)
        return self.activation(out)

    def _separate(self, x: torch.Tensor, weights: torch.Tensor, patterns: torch.Tensor):
        scales = weights @ patterns  # (n_k, F): weight of each filter under each kernel size
        by_size = sorted(range(len(self.kernel_sizes)), key=self.kernel_sizes.__getitem__)
        radius = self.kernel_sizes[by_size[0]] // 2
        pre = self.window_conv(x, 2 * radius + 1, activation=False)  # running pre-activation
        out = None
        for kernel_index in by_size:
            while radius < self.kernel_sizes[kernel_index] // 2:
                radius += 1
                pre = self.ring_conv(x, radius).add_(pre)  # in place: a fresh conv output
            scale = scales[kernel_index][None, :, None, None]
            act = self.activation(pre)
            # in place, one pass: no backward needs the running sum itself
            out = act * scale if out is None else out.addcmul_(act, scale)
        return out  # (B, F, H, W)

    def ring_conv(self, x: torch.Tensor, radius: int) -> torch.Tensor:
        """conv(x) with the taps at Chebyshev distance `radius` from the kernel centre
        (no bias): the two rows as one (2, 2r+1) convolution dilated 2r apart, the
        two columns between them as one (2r-1, 2) convolution."""
        centre, step = max(self.kernel_sizes) // 2, 2 * radius
        span = slice(centre - radius, centre + radius + 1)
        rows = self.weight[:, :, span.start : span.stop : step, span]  # (F, C, 2, 2r+1)
        columns = self.weight[:, :, span.start + 1 : span.stop - 1, span.start : span.stop : step]
        out = F.conv2d(x, rows, padding=(radius, radius), dilation=(step, 1))
        return out.add_(F.conv2d(x, columns, padding=(radius - 1, radius), dilation=(1, step)))

    def window_conv(
        self, x: torch.Tensor, kernel_size: int, filters: int | None = None, activation: bool = True
    ) -> torch.Tensor:
        """act(conv) with the centred kernel_size^2 window of the first `filters` filters
        (all F by default); the bare convolution when activation is False."""
        start = (max(self.kernel_sizes) - kernel_size) // 2
        window = slice(start, start + kernel_size)
        kernel = self.weight[:filters, :, window, window]  # (f, C, k, k)
        out = F.conv2d(x, kernel, self.bias[:filters], padding=kernel_size // 2)
        return self.activation(out) if activation else out

    def candidate_terms(self, x: torch.Tensor, weights: torch.Tensor, patterns: torch.Tensor):
        """The LHS of Eq. 5 term by term, one convolution per candidate (k, f) with its own
        k x k kernel and f filters: the reference "separate" (slower, same numbers)."""
        out = None
        for (kernel_index, kernel_size), (pattern_index, pattern) in itertools.product(
            enumerate(self.kernel_sizes), enumerate(patterns)
        ):
            filters = self.distribution.pattern_filters()[pattern_index]
            term = self.window_conv(x, kernel_size, filters) * pattern[:filters, None, None]
            term = F.pad(term, (0, 0, 0, 0, 0, self.out_channels - term.shape[1]))
            term = weights[kernel_index, pattern_index] * term
            out = term if out is None else out + term
        return out  # (B, F, H, W)

    def extra_repr(self) -> str:
        return (f"{self.weight.shape[1]}, {self.out_channels}, kernel_sizes={self.kernel_sizes}, "
                f"filters={self.distribution.filter_counts}, mode={self.mode}")
