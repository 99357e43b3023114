"""BatchNorms with the op weights folded in: the shared helpers of the fused and stacked
forms of the HiNAS search cell (`cells.py`).

For an affine-free BatchNorm (the search's), w * BN(y) equals BN(y) with a per-channel
scale of w, so a mixed op's weight costs no extra multiply, forward or backward, and no
saved tensor. Several BatchNorms over the stacked channels of one convolution run as one.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from searchspaces.layout import grad_like_input


def batch_norms(norms: Sequence[nn.BatchNorm2d], features: torch.Tensor,
                scale: torch.Tensor | None) -> torch.Tensor:
    """The affine-free BatchNorms `norms` over their stacked channels (n*C, one norm: C),
    times `scale` (n*C,) when given, as one op. Follows `nn.BatchNorm2d.forward` for each
    of them (running statistics, momentum, batch count)."""
    first = norms[0]
    momentum = 0.0 if first.momentum is None else first.momentum
    if first.training and first.track_running_stats:
        for norm in norms:
            norm.num_batches_tracked.add_(1)
        if first.momentum is None:
            momentum = 1.0 / float(first.num_batches_tracked)
    tracked, single = first.running_mean is not None, len(norms) == 1
    mean = var = None
    if tracked:  # one norm updates its buffers in place; stacked ones are copied back
        mean = first.running_mean if single else torch.cat([n.running_mean for n in norms])
        var = first.running_var if single else torch.cat([n.running_var for n in norms])
    use_batch = first.training or not tracked
    out = F.batch_norm(features, mean, var, scale, None, use_batch, momentum, first.eps)
    if tracked and use_batch and not single:
        with torch.no_grad():
            for norm, new_mean, new_var in zip(norms, mean.chunk(len(norms)),
                                               var.chunk(len(norms))):
                norm.running_mean.copy_(new_mean)
                norm.running_var.copy_(new_var)
    return grad_like_input(out)  # a term of a node: its gradient is a slice of the cell's


def scaled_batch_norm(norm: nn.BatchNorm2d, features: torch.Tensor,
                      weight: torch.Tensor) -> torch.Tensor:
    """`weight * norm(features)` for a BatchNorm without affine parameters, as one op."""
    # (C,) all equal to the op weight. Contiguous: torch 2.13's CPU BatchNorm backward for
    # NHWC input and gradient reads a stride-0 (expanded) weight wrongly (measured: garbage).
    scale = weight.expand(features.shape[1]).contiguous()
    return batch_norms([norm], features, scale)
