"""grad_like_input: identity forward; backward hands on the same gradient values in the
layout of the input (NHWC for channels_last inputs)."""

from __future__ import annotations

import torch

from searchspaces.layout import grad_like_input


def _gradient_seen_by(x: torch.Tensor, upstream: torch.Tensor) -> torch.Tensor:
    seen = []
    y = grad_like_input(x)
    y.register_hook(lambda grad: seen.append(grad))  # after the guard, as BN would get it
    x.register_hook(lambda grad: seen.append(grad))
    torch.cat([y[:, :2], y[:, 2:] * 1.0], dim=1).backward(upstream)
    return seen[-1]


def test_channels_last_input_gets_a_channels_last_gradient():
    x = torch.randn(2, 5, 4, 4).contiguous(memory_format=torch.channels_last)
    upstream = torch.randn(2, 5, 4, 4)  # NCHW
    grad = _gradient_seen_by(x.requires_grad_(), upstream)
    assert grad.is_contiguous(memory_format=torch.channels_last) and not grad.is_contiguous()
    torch.testing.assert_close(grad, upstream)


def test_nchw_input_gets_a_contiguous_gradient_and_plain_tensors_pass_through():
    x = torch.randn(2, 5, 4, 4, requires_grad=True)
    upstream = torch.randn(2, 4, 4, 5).permute(0, 3, 1, 2)  # strided
    grad = _gradient_seen_by(x, upstream)
    assert grad.is_contiguous()
    torch.testing.assert_close(grad, upstream)
    plain = torch.randn(3)
    assert grad_like_input(plain) is plain
