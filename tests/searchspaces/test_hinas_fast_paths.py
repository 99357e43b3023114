"""The fast forms of the HiNAS search cell compute what the op-by-op reference does (outputs,
gradients of inputs, op weights and parameters, BatchNorm running statistics), in NCHW and
NHWC: the fused mixed op and the source-by-source ("stacked") cell (searchspaces/hinas/
cells.py), each chosen per cell when it is built; weights with exact zeros take the edge
path."""

from __future__ import annotations

import pytest
import torch

from searchspaces.hinas import cells
from searchspaces.hinas.cells import MixedOp, SearchCell
from searchspaces.hinas.operations import JOURNAL_PRIMITIVES
from searchspaces.hinas.supernet import HiNASSupernet
from searchspaces.hinas.topology import num_edges
from searchspaces.registry import get_space


@pytest.fixture(autouse=True)
def _single_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def cell_step(cell, inputs, weights, nhwc: bool = False):
    """Forward + backward of the cell on copies of (two_back, previous) and weights."""
    fmt = torch.channels_last if nhwc else torch.contiguous_format
    states = [t.clone().contiguous(memory_format=fmt).requires_grad_() for t in inputs]
    w = weights.clone().requires_grad_()
    out = cell(*states, w)
    out.backward(torch.linspace(-1, 1, out.numel()).reshape(out.shape))
    return out.detach(), states[0].grad, states[1].grad, w.grad


def twin(module, build):
    """`build()` (another form of `module`) with `module`'s state: forms share state dicts."""
    other = build()
    other.load_state_dict(module.state_dict())
    return other.train(module.training)


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
    reference = twin(mixed, lambda: MixedOp(3, JOURNAL_PRIMITIVES, activation, fused=False))
    fmt = torch.channels_last if nhwc else torch.contiguous_format
    inputs = torch.randn(2, 3, 6, 6).contiguous(memory_format=fmt)
    weights = torch.softmax(torch.randn(len(JOURNAL_PRIMITIVES)), -1)
    active = [True] * len(JOURNAL_PRIMITIVES)
    results = []
    for module, activations in ((mixed, 1), (reference, 5)):  # shared by the conv ops
        calls = []
        for op in module.ops.values():
            if hasattr(op, "activation"):
                op.activation.register_forward_hook(lambda *_, calls=calls: calls.append(1))
        x, w = inputs.clone().requires_grad_(), weights.clone().requires_grad_()
        out = module(x, w, active)
        assert len(calls) == activations
        out.backward(torch.linspace(-1, 1, out.numel()).reshape(out.shape))
        results.append((out.detach(), x.grad, w.grad))
    for got, expected in zip(*results):
        torch.testing.assert_close(got, expected, rtol=1e-4, atol=1e-5)
    assert_same_modules(mixed, reference)


def make_cell(activation="leaky_relu", nodes=3, channels=3, primitives=JOURNAL_PRIMITIVES):
    """A stacked cell, its reference twin, inputs and op weights."""
    torch.manual_seed(0)
    cell = SearchCell(channels, nodes, primitives, activation)
    reference = twin(cell, lambda: SearchCell(channels, nodes, primitives, activation,
                                              form="reference"))
    inputs = (torch.randn(2, channels, 7, 7), torch.randn(2, channels, 7, 7))
    weights = torch.softmax(torch.randn(num_edges(nodes), len(primitives)), -1)
    return cell, reference, inputs, weights


@pytest.mark.parametrize("activation", ["leaky_relu", "relu"])
@pytest.mark.parametrize("train", [True, False])
@pytest.mark.parametrize("nhwc", [False, True])
def test_source_by_source_cell_matches_edge_by_edge(activation, train, nhwc, monkeypatch):
    cell, reference, inputs, weights = make_cell(activation)
    cell.train(train)
    reference.train(train)
    calls = []
    monkeypatch.setattr(cells, "source_terms", _counting(cells.source_terms, calls))
    got = cell_step(cell, inputs, weights, nhwc=nhwc)
    assert len(calls) == 4  # states two_back, previous, node 0, node 1 (3 nodes)
    expected = cell_step(reference, inputs, weights, nhwc=nhwc)
    assert len(calls) == 4  # the reference cell never stacks
    for a, b in zip(got, expected):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5)
    assert_same_modules(cell, reference)
    if train:  # the statistics moved, and moved alike
        norm = cell.edges[0].ops["conv_3x3"].norm
        assert norm.num_batches_tracked == 1 and not torch.equal(norm.running_var,
                                                                 torch.ones(3))


def test_a_zero_weight_takes_the_edge_path(monkeypatch):
    cell, reference, inputs, weights = make_cell()
    weights[4, 0] = 0.0  # conv_3x3 of one edge switched off exactly
    calls = []
    monkeypatch.setattr(cells, "source_terms", _counting(cells.source_terms, calls))
    got = cell_step(cell, inputs, weights)
    assert not calls
    expected = cell_step(reference, inputs, weights)
    for a, b in zip(got, expected):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5)


def test_cells_without_stackable_ops_take_the_edge_path():
    cell, _, _, _ = make_cell(primitives=("skip", "none"))
    assert cell.stackable  # skip and none alone: still one pass per state
    mixed = MixedOp(3, ("conv_3x3",), "relu")
    mixed.ops["conv_3x3"].norm = torch.nn.BatchNorm2d(3, affine=True)
    assert not cells.stackable([mixed])
    assert not SearchCell(3, 2, JOURNAL_PRIMITIVES, "relu", form="fused").stackable


def test_skip_and_none_only_cell_matches_reference():
    cell, reference, inputs, weights = make_cell(primitives=("skip", "none"))
    got = cell_step(cell, inputs, weights)
    expected = cell_step(reference, inputs, weights)
    for a, b in zip(got[:3], expected[:3]):
        torch.testing.assert_close(a, b)


def test_unknown_cell_form_is_refused():
    with pytest.raises(ValueError, match="cell form 'fast'"):
        SearchCell(3, 2, JOURNAL_PRIMITIVES, "relu", form="fast")


# The code variant's head (BatchNorms over near-constant channels of 8x8 images) turns the
# float32 rounding of the fused sums into gradient differences of ~5%: compared in float64.
@pytest.mark.parametrize("variant, dtype", [("paper", torch.float32), ("code", torch.float64)])
@pytest.mark.parametrize("form", ["stacked", "fused"])
def test_supernet_step_matches_reference(form, variant, dtype):
    options = get_space("hinas").parse_options(
        {"num_layers": 3, "num_nodes": 3, "width": 2, "stem_channels": 4, "variant": variant})
    torch.manual_seed(0)
    supernet = HiNASSupernet(options, 1, cell_form=form)
    with torch.no_grad():
        supernet.alphas.normal_()
    reference = twin(supernet, lambda: HiNASSupernet(options, 1, cell_form="reference"))
    supernet.to(dtype), reference.to(dtype)
    assert {cell.form for cell in reference.cells.values()} == {"reference"}
    image = torch.rand(2, 1, 8, 8, dtype=dtype)
    outputs = []
    for model in (supernet, reference):
        out = model(image)
        out.square().mean().backward()
        outputs.append(out.detach())
    torch.testing.assert_close(outputs[0], outputs[1], rtol=1e-4, atol=1e-5)
    assert_same_modules(supernet, reference)


def _counting(function, calls):
    def wrapped(*args, **kwargs):
        calls.append(1)
        return function(*args, **kwargs)

    return wrapped
