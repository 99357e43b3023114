"""Structural distributions over the slices of one superkernel and their relaxed
samples (Mozejko et al., "Superkernel Neural Architecture Search for Image
Denoising", CVPRW 2020, Secs. 4.1-4.4 and 4.5.1).

A superkernel has a maximal kernel of size K x K with F filters. Every
distribution describes its (relaxed) slice the same way, so that the
convolution in `operations.py` never needs to know which one it holds:

    weights  (n_k, P): relaxed weight of each (kernel size, filter pattern) pair,
    patterns (P, F):   the filter patterns (1 = filter kept),

and the expected mask of Eq. 4 is sum_{k,p} weights[k, p] * S_k (x) patterns[p],
with S_k the centred k x k spatial mask.

- joint (Sec. 4.1): one categorical over all (k, f) pairs; the patterns are the
  prefix masks "first f filters" of the candidate filter counts;
- factorized (Sec. 4.2): p(k, f) = p_k p_f, same patterns;
- filterwise (Sec. 4.3): a categorical over k and an independent Bernoulli per
  filter; one soft pattern b (F,);
- filterwise_attention (Sec. 4.4, Eq. 1): as filterwise, with the filter logits
  theta = softmax(V V^T) theta_base and V a learned F x l key matrix.

In training mode categoricals are sampled with Gumbel-softmax and Bernoullis
with the relaxed Bernoulli (binary Concrete) of Jang et al. (2017), at the
temperature `temperature` (annealed by the supernet); in eval mode the
expected, noise-free probabilities are used, so validation is deterministic.

Distillation (Sec. 4.5.5): argmax of each categorical; a filter is kept when
its Bernoulli probability is above 0.5 (at least one filter is kept).
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

DISTRIBUTIONS = ("joint", "factorized", "filterwise", "filterwise_attention")
BIG_LOGIT = 1e4  # softmax and sigmoid saturate to exactly 0 and 1 in float32
FILTER_LOGIT_INIT = 1.0  # (ours) Bernoulli filters start at p = 0.73: most filters on
_ONE_HOT_MARGIN = 120.0  # exp(-120) underflows to 0 in float32: attention rows one-hot
_EPS = 1e-6


@dataclass(frozen=True)
class Choice:
    """A discrete slice: kernel size `kernel_sizes[kernel_index]` and `filters` filters,
    the first ones, or those at the indices `kept` (ascending; filterwise types)."""

    kernel_index: int
    filters: int
    kept: tuple[int, ...] | None = None

    def indices(self) -> tuple[int, ...]:
        """The kept filters of the maximal kernel, ascending."""
        return tuple(range(self.filters)) if self.kept is None else self.kept


def relaxed_categorical(logits: torch.Tensor, temperature: float, sample: bool) -> torch.Tensor:
    """Gumbel-softmax sample at `temperature` (training) or softmax(logits) (expected)."""
    if sample:
        return F.gumbel_softmax(logits, tau=temperature, hard=False)
    return F.softmax(logits, dim=-1)


def relaxed_bernoulli(logits: torch.Tensor, temperature: float, sample: bool) -> torch.Tensor:
    """Relaxed Bernoulli sample sigmoid((logits + logistic noise) / temperature), or the
    expected probability sigmoid(logits)."""
    if not sample:
        return torch.sigmoid(logits)
    uniform = torch.rand_like(logits).clamp(_EPS, 1 - _EPS)
    noise = uniform.log() - (-uniform).log1p()  # Logistic(0, 1)
    return torch.sigmoid((logits + noise) / temperature)


def prefix_patterns(filter_counts: tuple[int, ...]) -> torch.Tensor:
    """(n_f, F) masks keeping the first f filters, one row per candidate count f."""
    columns = torch.arange(max(filter_counts))
    return (columns[None, :] < torch.tensor(filter_counts)[:, None]).float()


def bernoulli_table(probabilities: torch.Tensor) -> torch.Tensor:
    """(F, 2) rows [p, 1 - p]: per-filter Bernoullis as probability vectors (entropy)."""
    return torch.stack([probabilities, 1 - probabilities], dim=-1)


class StructuralDistribution(nn.Module, ABC):
    """A distribution over the slices of one superkernel (the module's arch parameters)."""

    # True when every pattern is a prefix "first f filters" (the candidate convs can be
    # sliced to f filters); False for per-filter Bernoulli patterns.
    prefix_patterns: bool = True

    def __init__(self, num_kernels: int, filter_counts: tuple[int, ...]) -> None:
        super().__init__()
        self.num_kernels = num_kernels
        self.filter_counts = tuple(filter_counts)
        self.max_filters = max(filter_counts)
        self.temperature = 1.0  # set by the supernet's annealing schedule

    @abstractmethod
    def relaxed(self) -> tuple[torch.Tensor, torch.Tensor]:
        """(weights (n_k, P), patterns (P, F)): sampled in training, expected in eval."""

    @abstractmethod
    def choose(self) -> Choice:
        """The distilled slice (Sec. 4.5.5)."""

    @abstractmethod
    def set_choice(self, choice: Choice) -> None:
        """Set the parameters so that the distribution is one-hot on `choice`."""

    @abstractmethod
    def probabilities(self) -> list[torch.Tensor]:
        """Probability vectors (last dim sums to 1), for the entropy of the search."""

    def pattern_filters(self) -> tuple[int, ...]:
        """Filters a candidate convolution of each pattern needs (its prefix length)."""
        return self.filter_counts if self.prefix_patterns else (self.max_filters,)


class JointDistribution(StructuralDistribution):
    """One softmax over all (k, f) pairs, one logit per pair (Sec. 4.1)."""

    def __init__(self, num_kernels: int, filter_counts: tuple[int, ...]) -> None:
        super().__init__(num_kernels, filter_counts)
        self.logits = nn.Parameter(torch.zeros(num_kernels * len(filter_counts)))
        self.register_buffer("patterns", prefix_patterns(self.filter_counts), persistent=False)

    def relaxed(self) -> tuple[torch.Tensor, torch.Tensor]:
        weights = relaxed_categorical(self.logits, self.temperature, self.training)
        return weights.view(self.num_kernels, -1), self.patterns  # (n_k, n_f), (n_f, F)

    def choose(self) -> Choice:
        index = int(self.logits.argmax())
        kernel_index, filter_index = divmod(index, len(self.filter_counts))
        return Choice(kernel_index, self.filter_counts[filter_index])

    @torch.no_grad()
    def set_choice(self, choice: Choice) -> None:
        self.logits.zero_()
        index = choice.kernel_index * len(self.filter_counts)
        self.logits[index + self.filter_counts.index(choice.filters)] = BIG_LOGIT

    def probabilities(self) -> list[torch.Tensor]:
        return [F.softmax(self.logits, dim=-1)]


class FactorizedDistribution(StructuralDistribution):
    """Independent softmaxes over kernel sizes and filter counts: p_{k,f} = p_k p_f (Sec. 4.2)."""

    def __init__(self, num_kernels: int, filter_counts: tuple[int, ...]) -> None:
        super().__init__(num_kernels, filter_counts)
        self.kernel_logits = nn.Parameter(torch.zeros(num_kernels))
        self.filter_logits = nn.Parameter(torch.zeros(len(filter_counts)))
        self.register_buffer("patterns", prefix_patterns(self.filter_counts), persistent=False)

    def relaxed(self) -> tuple[torch.Tensor, torch.Tensor]:
        kernels = relaxed_categorical(self.kernel_logits, self.temperature, self.training)
        filters = relaxed_categorical(self.filter_logits, self.temperature, self.training)
        return torch.outer(kernels, filters), self.patterns  # (n_k, n_f), (n_f, F)

    def choose(self) -> Choice:
        filter_index = int(self.filter_logits.argmax())
        return Choice(int(self.kernel_logits.argmax()), self.filter_counts[filter_index])

    @torch.no_grad()
    def set_choice(self, choice: Choice) -> None:
        self.kernel_logits.zero_()
        self.kernel_logits[choice.kernel_index] = BIG_LOGIT
        self.filter_logits.zero_()
        self.filter_logits[self.filter_counts.index(choice.filters)] = BIG_LOGIT

    def probabilities(self) -> list[torch.Tensor]:
        return [F.softmax(self.kernel_logits, dim=-1), F.softmax(self.filter_logits, dim=-1)]


class FilterwiseDistribution(StructuralDistribution):
    """A softmax over kernel sizes and one Bernoulli per filter (Sec. 4.3)."""

    prefix_patterns = False

    def __init__(self, num_kernels: int, filter_counts: tuple[int, ...]) -> None:
        super().__init__(num_kernels, filter_counts)
        self.kernel_logits = nn.Parameter(torch.zeros(num_kernels))
        self.filter_logits = nn.Parameter(torch.full((self.max_filters,), FILTER_LOGIT_INIT))

    def logits_per_filter(self) -> torch.Tensor:
        return self.filter_logits  # (F,)

    def relaxed(self) -> tuple[torch.Tensor, torch.Tensor]:
        kernels = relaxed_categorical(self.kernel_logits, self.temperature, self.training)
        mask = relaxed_bernoulli(self.logits_per_filter(), self.temperature, self.training)
        return kernels[:, None], mask[None, :]  # (n_k, 1), (1, F)

    def choose(self) -> Choice:
        logits = self.logits_per_filter()
        kept = (logits > 0).nonzero().flatten()  # sigmoid(logit) > 0.5
        if not len(kept):  # at least one filter: the likeliest
            kept = logits.argmax().reshape(1)
        indices = tuple(int(index) for index in kept)
        return Choice(int(self.kernel_logits.argmax()), len(indices), indices)

    @torch.no_grad()
    def set_choice(self, choice: Choice) -> None:
        self.kernel_logits.zero_()
        self.kernel_logits[choice.kernel_index] = BIG_LOGIT
        self.filter_logits.copy_(self._kept_filters(choice.indices()))

    def _kept_filters(self, kept: tuple[int, ...]) -> torch.Tensor:
        """Logits +BIG for the filters at `kept` and -BIG for the others."""
        keep = torch.zeros(self.max_filters, dtype=torch.bool, device=self.kernel_logits.device)
        keep[list(kept)] = True
        return torch.where(keep, BIG_LOGIT, -BIG_LOGIT)

    def probabilities(self) -> list[torch.Tensor]:
        filters = bernoulli_table(torch.sigmoid(self.logits_per_filter()))
        return [F.softmax(self.kernel_logits, dim=-1), filters]


class FilterwiseAttentionDistribution(FilterwiseDistribution):
    """Filterwise, with per-filter logits theta = softmax(V V^T) theta_base (Sec. 4.4, Eq. 1).

    theta_base starts slightly perturbed around FILTER_LOGIT_INIT: with equal base
    logits every row average is the same and V would get no gradient."""

    def __init__(self, num_kernels: int, filter_counts: tuple[int, ...], key_dim: int) -> None:
        super().__init__(num_kernels, filter_counts)
        self.filter_logits.data.add_(0.1 * torch.randn(self.max_filters))  # theta_base
        self.keys = nn.Parameter(torch.randn(self.max_filters, key_dim) / math.sqrt(key_dim))

    def logits_per_filter(self) -> torch.Tensor:
        attention = F.softmax(self.keys @ self.keys.T, dim=-1)  # (F, F)
        return attention @ self.filter_logits  # (F,)

    @torch.no_grad()
    def set_choice(self, choice: Choice) -> None:
        """Keys on a circle, scaled until softmax(V V^T) is exactly the identity; then
        theta = theta_base, which is set like the plain filterwise logits."""
        super().set_choice(choice)
        count = self.max_filters
        angles = 2 * math.pi * torch.arange(count, device=self.keys.device) / count
        gap = 1 - math.cos(2 * math.pi / count) if count > 1 else 1.0
        radius = math.sqrt(_ONE_HOT_MARGIN / gap)
        self.keys.zero_()
        self.keys[:, 0] = radius * torch.cos(angles)
        self.keys[:, 1] = radius * torch.sin(angles)


def make_distribution(
    kind: str, num_kernels: int, filter_counts: tuple[int, ...], key_dim: int
) -> StructuralDistribution:
    """The structural distribution named `kind` (one of DISTRIBUTIONS)."""
    if kind == "joint":
        return JointDistribution(num_kernels, filter_counts)
    if kind == "factorized":
        return FactorizedDistribution(num_kernels, filter_counts)
    if kind == "filterwise":
        return FilterwiseDistribution(num_kernels, filter_counts)
    if kind == "filterwise_attention":
        return FilterwiseAttentionDistribution(num_kernels, filter_counts, key_dim)
    known = ", ".join(DISTRIBUTIONS)
    raise ValueError(f"unknown superkernel distribution {kind!r} (known: {known})")
