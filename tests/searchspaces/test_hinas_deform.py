"""DCNv2 (searchspaces/hinas/deform.py): plain conv at zero offsets, a slow loop reference
with fractional and out-of-image offsets, gradients to the offsets, the `def_3x3` op and
the width check of the options."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from pydantic import ValidationError

from searchspaces.hinas import deform
from searchspaces.hinas.deform import DeformConv2d, deform_conv2d
from searchspaces.hinas.operations import CVPR_PRIMITIVES, OPS
from searchspaces.registry import get_space


def _bilinear(image: torch.Tensor, y: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """x(p) at a fractional p as the DCNv2 CUDA kernel reads it (zero outside the image)."""
    height, width = image.shape
    if y <= -1 or y >= height or x <= -1 or x >= width:
        return image.new_zeros(())
    y0, x0 = math.floor(float(y.detach())), math.floor(float(x.detach()))
    ly, lx = y - y0, x - x0
    value = image.new_zeros(())
    for row, wy in ((y0, 1 - ly), (y0 + 1, ly)):
        for col, wx in ((x0, 1 - lx), (x0 + 1, lx)):
            if 0 <= row < height and 0 <= col < width:
                value = value + wy * wx * image[row, col]
    return value


def _reference(x, offset, mask, weight, padding=1, dilation=1):
    """DCNv2 Eq. 3 pixel by pixel, tap by tap (stride 1)."""
    batch, channels, height, width = x.shape
    out_channels, _, kh, kw = weight.shape
    groups = offset.shape[1] // (2 * kh * kw)
    out = x.new_zeros(batch, out_channels, height, width)
    for b in range(batch):
        for i in range(height):
            for j in range(width):
                column = []
                for c in range(channels):
                    g = c // (channels // groups)
                    for k in range(kh * kw):
                        tap = g * kh * kw + k
                        y = i - padding + (k // kw) * dilation + offset[b, 2 * tap, i, j]
                        xx = j - padding + (k % kw) * dilation + offset[b, 2 * tap + 1, i, j]
                        column.append(_bilinear(x[b, c], y, xx) * mask[b, tap, i, j])
                out[b, :, i, j] = weight.reshape(out_channels, -1) @ torch.stack(column)
    return out


def _inputs(groups=2, channels=4, size=5, seed=0):
    generator = torch.Generator().manual_seed(seed)
    x = torch.randn(1, channels, size, size, generator=generator)
    # fractional offsets up to 3 pixels: some taps land outside the image
    offset = 3 * torch.randn(1, 2 * groups * 9, size, size, generator=generator)
    mask = torch.rand(1, groups * 9, size, size, generator=generator)
    weight = torch.randn(3, channels, 3, 3, generator=generator)
    return x, offset, mask, weight


@pytest.mark.parametrize("dilation", [1, 2])
def test_zero_offsets_and_unit_mask_are_a_plain_convolution(dilation):
    x, _, _, weight = _inputs()
    offset = torch.zeros(1, 36, 5, 5)
    mask = torch.ones(1, 18, 5, 5)
    out = deform_conv2d(x, offset, mask, weight, padding=dilation, dilation=dilation)
    plain = F.conv2d(x, weight, padding=dilation, dilation=dilation)
    torch.testing.assert_close(out, plain, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("groups, dilation", [(1, 1), (2, 1), (2, 2)])
def test_matches_the_loop_reference_with_random_offsets(groups, dilation):
    x, offset, mask, weight = _inputs(groups=groups)
    assert (offset.abs() > 2).any() and (offset.frac() != 0).all()
    out = deform_conv2d(x, offset, mask, weight, padding=dilation, dilation=dilation)
    expected = _reference(x, offset, mask, weight, padding=dilation, dilation=dilation)
    torch.testing.assert_close(out, expected, atol=1e-5, rtol=1e-5)


def test_offset_gradients_match_the_reference():
    x, offset, mask, weight = (t.double() for t in _inputs(size=4))
    grads = []
    for function in (deform_conv2d, _reference):
        offset_leaf = offset.clone().requires_grad_()
        mask_leaf = mask.clone().requires_grad_()
        function(x, offset_leaf, mask_leaf, weight).square().sum().backward()
        grads.append((offset_leaf.grad, mask_leaf.grad))
    assert grads[0][0].abs().sum() > 0
    torch.testing.assert_close(grads[0], grads[1], atol=1e-8, rtol=1e-6)


def test_module_starts_at_zero_offsets_and_half_masks():
    torch.manual_seed(0)
    module = DeformConv2d(4)
    x = torch.randn(2, 4, 6, 6)
    offset, mask = module.offsets_and_mask(x)
    assert offset.shape == (2, 36, 6, 6) and mask.shape == (2, 18, 6, 6)
    assert offset.abs().max() == 0 and torch.all(mask == 0.5)
    torch.testing.assert_close(module(x), 0.5 * F.conv2d(x, module.weight, padding=1))


def test_gradients_reach_the_offset_predictor():
    torch.manual_seed(0)
    module = DeformConv2d(4)
    module(torch.randn(2, 4, 6, 6)).square().sum().backward()
    assert module.offset_mask.weight.grad.abs().sum() > 0
    assert module.weight.grad.abs().sum() > 0


@pytest.mark.skipif(deform.FAST_DEFORM_CONV2D is None, reason="no torchvision ops here")
def test_torchvision_fast_path_equals_pure_torch():
    x, offset, mask, weight = _inputs()
    fast = deform.FAST_DEFORM_CONV2D(x, offset, weight, None, 1, 1, 1, mask)
    torch.testing.assert_close(deform_conv2d(x, offset, mask, weight), fast, atol=1e-5,
                               rtol=1e-5)


def test_def_op_keeps_the_shape_and_rejects_groups_that_do_not_divide():
    op = OPS["def_3x3"](6, False, "relu")
    x = torch.randn(2, 6, 8, 8).to(memory_format=torch.channels_last)
    assert op(x).shape == x.shape
    with pytest.raises(ValueError, match="2 deformable groups do not divide 5 channels"):
        OPS["def_3x3"](5, False, "relu")


def test_options_name_the_width_the_deformable_groups_cannot_serve():
    space = get_space("hinas")
    options = {"primitives": list(CVPR_PRIMITIVES), "width_multipliers": [1.0, 2.0, 4.0]}
    assert space.parse_options({**options, "width": 10}).width == 10
    with pytest.raises(ValidationError) as raised:
        space.parse_options({**options, "width": 5})
    (error,) = raised.value.errors()
    assert error["loc"] == ("width",) and "5 channels" in error["msg"]
    # without def_3x3 an odd width is fine
    assert space.parse_options({"width": 5}).width == 5


def test_channels_last_module_computes_the_same():
    torch.manual_seed(0)
    module = DeformConv2d(4)
    with torch.no_grad():
        module.offset_mask.weight.normal_()
    x = torch.randn(2, 4, 6, 6)
    expected = module(x)
    nhwc = module.to(memory_format=torch.channels_last)
    assert not nhwc.weight.is_contiguous()
    torch.testing.assert_close(nhwc(x.to(memory_format=torch.channels_last)), expected)


def _saved_bytes_and_grads(recompute: bool):
    torch.manual_seed(0)
    module = DeformConv2d(8)
    module.recompute = recompute
    with torch.no_grad():
        module.offset_mask.weight.normal_(0, 0.1)
    x = torch.randn(2, 8, 8, 8, requires_grad=True)
    saved = []
    with torch.autograd.graph.saved_tensors_hooks(
            lambda t: saved.append(t.numel() * t.element_size()) or t, lambda t: t):
        out = module(x)
    out.square().sum().backward()
    return sum(saved), [x.grad, module.weight.grad, module.offset_mask.weight.grad]


def test_recompute_stores_a_fraction_and_gives_the_same_gradients():
    stored, grads = _saved_bytes_and_grads(recompute=False)
    kept, same = _saved_bytes_and_grads(recompute=True)
    assert kept * 10 < stored  # the input (and weights) instead of 9 sampled copies and more
    torch.testing.assert_close(same, grads)
