"""Memory-layout helpers for models trained in channels_last (NHWC) on CPU.

PyTorch's CPU BatchNorm backward takes a slow path when the incoming gradient's
layout differs from its input's: with an NHWC input and an NCHW or strided
gradient (a channel slice of a concatenation, the zero-filled gradient of a
slice) it ran 7-30x slower than with matching layouts (measured on the HiNAS
search step, where such calls took 36% of the step). `grad_like_input` is the
identity forward and hands backward a gradient in the layout of its input.
"""

from __future__ import annotations

import torch


class _GradLikeInput(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x: torch.Tensor) -> torch.Tensor:
        ctx.nhwc = x.dim() == 4 and not x.is_contiguous() and x.is_contiguous(
            memory_format=torch.channels_last)
        return x.view_as(x)

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> torch.Tensor:
        layout = torch.channels_last if ctx.nhwc else torch.contiguous_format
        return grad.contiguous(memory_format=layout)


def grad_like_input(x: torch.Tensor) -> torch.Tensor:
    """`x`, with its gradient made contiguous in x's layout (NHWC or NCHW) on the way back."""
    return _GradLikeInput.apply(x) if x.requires_grad else x
