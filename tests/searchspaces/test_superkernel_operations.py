"""The superkernel convolution on tiny tensors: centred masks, "full" against
"separate" (one-hot agreement, the ring sums against one convolution per
candidate), expected masks, sampling, gradients, attention logits, annealing, and
the choice each structural distribution distils to."""

from __future__ import annotations

import itertools

import pytest
import torch

from searchspaces.registry import get_space
from searchspaces.superkernel.distributions import (
    DISTRIBUTIONS,
    Choice,
    FilterwiseAttentionDistribution,
)
from searchspaces.superkernel.operations import SuperConv2d, centred_masks

SPACE = get_space("superkernel")
KERNELS, FILTERS = (1, 3, 5), (2, 3, 5)


def _layer(kind: str, mode: str = "full", in_channels: int = 3) -> SuperConv2d:
    torch.manual_seed(0)
    return SuperConv2d(in_channels, KERNELS, FILTERS, kind, mode, key_dim=3)


def _supernet(**overrides):
    torch.manual_seed(0)
    return SPACE.build_supernet({**SPACE.tiny_options(), **overrides}, 1)


def test_centred_masks():
    masks = centred_masks((1, 3, 5))
    assert masks.shape == (3, 5, 5)
    assert masks.sum((1, 2)).tolist() == [1, 9, 25]
    assert masks[0, 2, 2] == 1 and masks[1, 1:4, 1:4].all() and masks[1, 0].sum() == 0


@pytest.mark.parametrize("kind", DISTRIBUTIONS)
@pytest.mark.parametrize("kernel_index, filters", [(0, 2), (1, 5), (2, 3)])
def test_full_equals_separate_for_one_hot(kind, kernel_index, filters):
    full, separate = _layer(kind, "full"), _layer(kind, "separate")
    for layer in (full, separate):
        layer.distribution.set_choice(Choice(kernel_index, filters))
    x = torch.randn(2, 3, 9, 9)
    for training in (True, False):  # Gumbel noise cannot move a saturated one-hot
        full.train(training), separate.train(training)
        out_full, out_separate = full(x), separate(x)
        assert torch.allclose(out_full, out_separate, atol=1e-6, rtol=0)
        assert out_full[:, filters:].abs().sum() == 0  # filters beyond the slice are cut


@pytest.mark.parametrize("kind", DISTRIBUTIONS)
def test_separate_equals_one_convolution_per_candidate(kind):
    layer = _layer(kind, "separate")
    with torch.no_grad():
        for param in layer.distribution.parameters():
            param.normal_()
    x = torch.randn(2, 3, 9, 9)
    weights, patterns = layer.distribution.relaxed()  # a Gumbel sample: no candidate is 0
    assert (weights > 0).all() and weights.max() < 1
    fused = layer._separate(x, weights, patterns)
    assert torch.allclose(fused, layer.candidate_terms(x, weights, patterns), atol=1e-6, rtol=0)
    assert not torch.allclose(fused, layer._full(x, weights, patterns), atol=1e-3)  # ReLU


@pytest.mark.parametrize("kernels", [(1, 3, 5), (7, 3), (5,), (3, 9)])
def test_separate_rings_match_candidates_in_value_and_gradient(kernels):
    """Sizes out of order and gaps of several rings: the running ring sums must give the
    per-candidate convolutions, and the same gradients for the shared kernel and bias."""
    torch.manual_seed(1)
    layer = SuperConv2d(3, kernels, (2, 4), "joint", "separate")
    with torch.no_grad():
        for param in layer.distribution.parameters():
            param.normal_()
    x = torch.randn(2, 3, 11, 11, requires_grad=True)
    weights, patterns = (t.detach() for t in layer.distribution.relaxed())
    grads = []
    for compute in (layer._separate, layer.candidate_terms):
        layer.zero_grad(), setattr(x, "grad", None)
        out = compute(x, weights, patterns)
        (out * torch.linspace(-1, 1, out.numel()).view_as(out)).sum().backward()
        grads.append((out.detach(), layer.weight.grad.clone(), layer.bias.grad.clone(), x.grad))
    for rings, reference in zip(*grads):
        assert torch.allclose(rings, reference, atol=1e-5, rtol=1e-5)
    assert (grads[0][1].abs().sum((0, 1)) > 0).all()  # every tap of the maximal kernel learns


@pytest.mark.parametrize("kind", DISTRIBUTIONS)
def test_full_and_separate_supernets_agree_for_one_hot(kind):
    full, separate = _supernet(superkernel=kind), _supernet(superkernel=kind, mode="separate")
    separate.load_state_dict(full.state_dict())
    assert SPACE.set_one_hot(full) == SPACE.set_one_hot(separate)
    image = torch.rand(2, 1, 8, 8)
    assert torch.allclose(full(image), separate(image), atol=1e-6, rtol=0)


@pytest.mark.parametrize("kind", ["joint", "factorized"])
def test_expected_mask_is_probability_weighted_sum_of_slice_masks(kind):
    layer = _layer(kind).eval()
    with torch.no_grad():
        for param in layer.distribution.parameters():
            param.normal_()
    probs = layer.distribution.probabilities()
    joint = probs[0].view(3, 3) if kind == "joint" else torch.outer(probs[0], probs[1])
    expected_kernel, expected_bias = torch.zeros(5, 5, 5), torch.zeros(5)
    for (k, size), (f, count) in itertools.product(enumerate(KERNELS), enumerate(FILTERS)):
        slice_mask = torch.zeros(5, 5, 5)  # (F, K, K): centred size x size of the first count
        start = (5 - size) // 2
        slice_mask[:count, start : start + size, start : start + size] = 1
        expected_kernel += joint[k, f] * slice_mask
        expected_bias[:count] += joint[k, f]
    kernel, bias = layer.expected_mask(*layer.distribution.relaxed())
    assert torch.allclose(kernel, expected_kernel, atol=1e-6)
    assert torch.allclose(bias, expected_bias, atol=1e-6)


def test_filterwise_expected_mask_is_kernel_mixture_times_filter_probabilities():
    layer = _layer("filterwise").eval()
    with torch.no_grad():
        layer.distribution.kernel_logits.normal_()
        layer.distribution.filter_logits.normal_()
    kernel_probs = torch.softmax(layer.distribution.kernel_logits, 0)
    filter_probs = torch.sigmoid(layer.distribution.filter_logits)
    spatial = (kernel_probs[:, None, None] * centred_masks(KERNELS)).sum(0)  # (K, K)
    kernel, bias = layer.expected_mask(*layer.distribution.relaxed())
    assert torch.allclose(kernel, filter_probs[:, None, None] * spatial, atol=1e-6)
    assert torch.allclose(bias, filter_probs, atol=1e-6)


@pytest.mark.parametrize("kind", DISTRIBUTIONS)
def test_eval_is_deterministic_and_training_samples(kind):
    layer, x = _layer(kind), torch.randn(1, 3, 6, 6)
    assert not torch.equal(layer(x), layer(x))  # Gumbel / logistic noise
    layer.eval()
    assert torch.equal(layer(x), layer(x))


@pytest.mark.parametrize("kind", DISTRIBUTIONS)
@pytest.mark.parametrize("mode", ["full", "separate"])
def test_gradients_reach_weights_and_logits(kind, mode):
    layer = _layer(kind, mode)
    layer(torch.randn(2, 3, 6, 6)).square().mean().backward()
    for name, param in layer.named_parameters():
        assert param.grad is not None and param.grad.abs().sum() > 0, name


def test_attention_logits_are_softmax_of_keys_times_base():
    distribution = _layer("filterwise_attention").distribution
    assert isinstance(distribution, FilterwiseAttentionDistribution)
    keys, base = distribution.keys.detach(), distribution.filter_logits.detach()
    expected = torch.softmax(keys @ keys.T, dim=-1) @ base
    assert torch.allclose(distribution.logits_per_filter(), expected)
    assert keys.shape == (5, 3)


def test_temperature_is_annealed_from_start_to_end_by_step():
    supernet = _supernet(temperature={"start": 2.0, "end": 0.5, "steps": 2})
    temperatures = []
    for step in range(4):
        supernet.on_step(step)
        temperatures.append({slot.distribution.temperature for slot in supernet.slots()})
    assert temperatures == [{2.0}, {1.0}, {0.5}, {0.5}]


# --- distillation of one slot: argmax, p > 0.5 -------------------------------------------
def test_distillation_takes_argmax_of_categoricals():
    joint = _layer("joint").distribution
    with torch.no_grad():
        joint.logits.copy_(torch.tensor([0, 1, 0, 0, 0, 0, 0, 3, 2.0]))
    assert joint.choose() == Choice(2, 3)  # pair (k index 2, f index 1)
    factorized = _layer("factorized").distribution
    with torch.no_grad():
        factorized.kernel_logits.copy_(torch.tensor([0.0, 2, 1]))
        factorized.filter_logits.copy_(torch.tensor([3.0, 0, 1]))
    assert factorized.choose() == Choice(1, 2)


def test_distillation_keeps_filters_above_one_half_and_at_least_one():
    filterwise = _layer("filterwise").distribution
    with torch.no_grad():
        filterwise.kernel_logits.copy_(torch.tensor([0.0, 0, 1]))
        filterwise.filter_logits.copy_(torch.tensor([0.3, -1, 2, -0.1, 0.01]))
    assert filterwise.choose() == Choice(2, 3, (0, 2, 4))  # which filters, not only how many
    with torch.no_grad():
        filterwise.filter_logits.copy_(torch.tensor([-2.0, -2, -2, -1, -2]))
    assert filterwise.choose() == Choice(2, 1, (3,))  # none above 1/2: the likeliest
