"""The fast forms of the HiNAS search cell compute what the op-by-op reference does (outputs,
gradients of inputs, op weights and parameters, BatchNorm running statistics), in NCHW and
NHWC: the fused mixed op (searchspaces/hinas/fused.py) and the source-by-source cell
(fanout.py); weights with exact zeros take the edge path."""

from __future__ import annotations

import copy

import pytest
import torch

from searchspaces.hinas import fanout
from searchspaces.hinas.cells import MixedOp, SearchCell
from searchspaces.hinas.operations import JOURNAL_PRIMITIVES
from searchspaces.hinas.topology import num_edges
from searchspaces.registry import get_space


@pytest.fixture(autouse=True)
def _single_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def cell_step(cell, inputs, weights, reference: bool, nhwc: bool = False):
    """Forward + backward of the cell on copies of (two_back, previous) and weights."""
    fmt = torch.channels_last if nhwc else torch.contiguous_format
    states = [t.clone().contiguous(memory_format=fmt).requires_grad_() for t in inputs]
    w = weights.clone().requires_grad_()
    MixedOp.reference = reference
    try:
        out = cell(*states, w)
        out.backward(torch.linspace(-1, 1, out.numel()).reshape(out.shape))
    finally:
        MixedOp.reference = False
    return out.detach(), states[0].grad, states[1].grad, w.grad


def assert_same_modules(got, expected):
    for (name, a), (_, b) in zip(got.named_parameters(), expected.named_parameters()):
        torch.testing.assert_close(a.grad, b.grad, rtol=1e-4, atol=1e-5, msg=name)
    for (name, a), (_, b) in zip(got.named_buffers(), expected.named_buffers()):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6, msg=name)


@pytest.mark.parametrize("activation", ["leaky_relu", "relu"])
@pytest.mark.parametrize("train", [True, False])
@pytest.mark.parametrize("nhwc", [False, True])
def test_fused_mixed_op_matches_reference(activation, train, nhwc):
    torch.manual_seed(0)
    mixed = MixedOp(3, JOURNAL_PRIMITIVES, activation).train(train)
    twin = copy.deepcopy(mixed)
    fmt = torch.channels_last if nhwc else torch.contiguous_format
    inputs = torch.randn(2, 3, 6, 6).contiguous(memory_format=fmt)
    weights = torch.softmax(torch.randn(len(JOURNAL_PRIMITIVES)), -1)
    active = [True] * len(JOURNAL_PRIMITIVES)
    results = []
    for module, reference in ((mixed, False), (twin, True)):
        x, w = inputs.clone().requires_grad_(), weights.clone().requires_grad_()
        MixedOp.reference = reference
        try:
            out = module(x, w, active)
            out.backward(torch.linspace(-1, 1, out.numel()).reshape(out.shape))
        finally:
            MixedOp.reference = False
        results.append((out.detach(), x.grad, w.grad))
    for got, expected in zip(*results):
        torch.testing.assert_close(got, expected, rtol=1e-4, atol=1e-5)
    assert_same_modules(mixed, twin)


def make_cell(activation="leaky_relu", nodes=3, channels=3, primitives=JOURNAL_PRIMITIVES):
    torch.manual_seed(0)
    cell = SearchCell(channels, nodes, primitives, activation)
    inputs = (torch.randn(2, channels, 7, 7), torch.randn(2, channels, 7, 7))
    weights = torch.softmax(torch.randn(num_edges(nodes), len(primitives)), -1)
    return cell, inputs, weights


@pytest.mark.parametrize("activation", ["leaky_relu", "relu"])
@pytest.mark.parametrize("train", [True, False])
@pytest.mark.parametrize("nhwc", [False, True])
def test_source_by_source_cell_matches_edge_by_edge(activation, train, nhwc, monkeypatch):
    cell, inputs, weights = make_cell(activation)
    cell.train(train)
    twin = copy.deepcopy(cell)
    calls = []
    monkeypatch.setattr(fanout, "source_terms", _counting(fanout.source_terms, calls))
    got = cell_step(cell, inputs, weights, reference=False, nhwc=nhwc)
    assert len(calls) == 4  # states two_back, previous, node 0, node 1 (3 nodes)
    expected = cell_step(twin, inputs, weights, reference=True, nhwc=nhwc)
    for a, b in zip(got, expected):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5)
    assert_same_modules(cell, twin)
    if train:  # the statistics moved, and moved alike
        norm = cell.edges[0].ops["conv_3x3"][2]
        assert norm.num_batches_tracked == 1 and not torch.equal(norm.running_var,
                                                                 torch.ones(3))


def test_a_zero_weight_takes_the_edge_path(monkeypatch):
    cell, inputs, weights = make_cell()
    weights[4, 0] = 0.0  # conv_3x3 of one edge switched off exactly
    twin = copy.deepcopy(cell)
    calls = []
    monkeypatch.setattr(fanout, "source_terms", _counting(fanout.source_terms, calls))
    got = cell_step(cell, inputs, weights, reference=False)
    assert not calls
    expected = cell_step(twin, inputs, weights, reference=True)
    for a, b in zip(got, expected):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5)


def test_cells_without_stackable_ops_take_the_edge_path():
    cell, _, _ = make_cell(primitives=("skip", "none"))
    assert fanout.supports(cell.edges)  # skip and none alone: still one pass per state
    mixed = MixedOp(3, ("conv_3x3",), "relu")
    mixed.ops["conv_3x3"][2] = torch.nn.BatchNorm2d(3, affine=True)
    assert not fanout.supports([mixed])


def test_skip_and_none_only_cell_matches_reference():
    cell, inputs, weights = make_cell(primitives=("skip", "none"))
    got = cell_step(cell, inputs, weights, reference=False)
    expected = cell_step(copy.deepcopy(cell), inputs, weights, reference=True)
    for a, b in zip(got[:3], expected[:3]):
        torch.testing.assert_close(a, b)


# The code variant's head (BatchNorms over near-constant channels of 8x8 images) turns the
# float32 rounding of the fused sums into gradient differences of ~5%: compared in float64.
@pytest.mark.parametrize("variant, dtype", [("paper", torch.float32), ("code", torch.float64)])
@pytest.mark.parametrize("stack_edges", [True, False])  # source by source / fused per edge
def test_supernet_step_matches_reference(stack_edges, variant, dtype, monkeypatch):
    monkeypatch.setattr(SearchCell, "stack_edges", stack_edges)
    space = get_space("hinas")
    torch.manual_seed(0)
    options = {"num_layers": 3, "num_nodes": 3, "width": 2, "stem_channels": 4,
               "variant": variant}
    supernet = space.build_supernet(options, 1).to(dtype)
    with torch.no_grad():
        supernet.alphas.normal_()
    twin = copy.deepcopy(supernet)
    image = torch.rand(2, 1, 8, 8, dtype=dtype)
    outputs = []
    for model, reference in ((supernet, False), (twin, True)):
        MixedOp.reference = reference
        try:
            out = model(image)
            out.square().mean().backward()
        finally:
            MixedOp.reference = False
        outputs.append(out.detach())
    torch.testing.assert_close(outputs[0], outputs[1], rtol=1e-4, atol=1e-5)
    assert_same_modules(supernet, twin)


def _counting(function, calls):
    def wrapped(*args, **kwargs):
        calls.append(1)
        return function(*args, **kwargs)

    return wrapped
