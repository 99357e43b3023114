"""The fused mixed op (searchspaces/hinas/fused.py) computes what the op-by-op reference does:
outputs, gradients (input, op weights, parameters) and BatchNorm running statistics."""

from __future__ import annotations

import copy

import pytest
import torch

from searchspaces.hinas.cells import MixedOp
from searchspaces.hinas.operations import JOURNAL_PRIMITIVES
from searchspaces.registry import get_space


@pytest.fixture(autouse=True)
def _single_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def run(module, forward, inputs, weights, reference: bool):
    """Forward + backward of `forward(module, x, w)` with MixedOp.reference set as asked."""
    x = inputs.clone().requires_grad_()  # clone keeps the layout
    w = weights.clone().requires_grad_()
    MixedOp.reference = reference
    try:
        out = forward(module, x, w)
        out.backward(torch.linspace(-1, 1, out.numel()).reshape(out.shape))
    finally:
        MixedOp.reference = False
    return out.detach(), x.grad, w.grad


def assert_same_modules(fused, reference):
    for (name, a), (_, b) in zip(fused.named_parameters(), reference.named_parameters()):
        torch.testing.assert_close(a.grad, b.grad, rtol=1e-4, atol=1e-5, msg=name)
    for (name, a), (_, b) in zip(fused.named_buffers(), reference.named_buffers()):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6, msg=name)


@pytest.mark.parametrize("activation", ["leaky_relu", "relu"])
@pytest.mark.parametrize("train", [True, False])
@pytest.mark.parametrize("layout", [torch.contiguous_format, torch.channels_last])
def test_fused_mixed_op_matches_reference(activation, train, layout):
    torch.manual_seed(0)
    mixed = MixedOp(3, JOURNAL_PRIMITIVES, activation).train(train)
    twin = copy.deepcopy(mixed)
    inputs = torch.randn(2, 3, 6, 6).contiguous(memory_format=layout)
    weights = torch.softmax(torch.randn(len(JOURNAL_PRIMITIVES)), -1)
    active = [True] * len(JOURNAL_PRIMITIVES)

    def forward(module, x, w):
        return module(x, w, active)

    fused = run(mixed, forward, inputs, weights, reference=False)
    reference = run(twin, forward, inputs, weights, reference=True)
    for got, expected in zip(fused, reference):
        torch.testing.assert_close(got, expected, rtol=1e-4, atol=1e-5)
    assert_same_modules(mixed, twin)


def test_fused_supernet_step_matches_reference():
    space = get_space("hinas")
    torch.manual_seed(0)
    options = {"num_layers": 3, "num_nodes": 2, "width": 2, "stem_channels": 4}
    supernet = space.build_supernet(options, 1)
    with torch.no_grad():
        supernet.alphas.normal_()
    twin = copy.deepcopy(supernet)
    image = torch.rand(2, 1, 8, 8)

    def forward(module, x, _):
        return module(x)

    fused = run(supernet, forward, image, torch.zeros(1), reference=False)
    reference = run(twin, forward, image, torch.zeros(1), reference=True)
    torch.testing.assert_close(fused[:2], reference[:2], rtol=1e-4, atol=1e-5)
    assert_same_modules(supernet, twin)
