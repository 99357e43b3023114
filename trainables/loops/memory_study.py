"""Memory of a study's search and retrain steps, before any trial starts.

Search: the supernet at `search.batch_size` and `data.patch_size`, with the weight
and architecture optimisers the search loop builds. Retrain: the network of the
arm's genotype when it names one. Otherwise the genotype is not known before the
search, so the estimate is the largest over the genotypes the supernet derives
when every architecture parameter picks its j-th candidate (j = 0.. the widest
choice list, capped at `MAX_CHOICES`, the last index standing for all larger
ones): every op on every edge in turn, together with the top width level
(HiNAS), the largest kernel and filter count (Superkernel) and nearly full
channel widths (MoD-NAS). That brackets what a search can return without
enumerating genotypes; the network is built with the retrain options
(`retrain.scale_options`, `retrain.space_options`) at `retrain.batch_size`.

Deriving needs real architecture parameters (and buffers such as HiNAS's move
mask), so that supernet is built on the CPU, but only when its weights are small
(`REAL_BUILD_LIMIT`); above it the supernet itself at the retrain options bounds
the derived network (a sub-network of it) without allocating anything.

`study_weights` counts only the weights and optimiser state of the supernet and of a given
genotype's network, without a step (a lower bound that `validate` checks in a moment).

Estimates are kept per process by what they depend on (the network's space, options or
genotype, and the step's shape): the arms of an ablation mostly share their supernet and
their candidate networks, so a study is estimated once per distinct network.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import asdict
from typing import Any

import torch

from searchspaces.genotype import Genotype
from searchspaces.registry import build_derived_from_genotype, get_space
from trainables.loops.estimate_store import recalled
from trainables.loops.memory import (
    StepMemory,
    StepShape,
    meta_step_memory,
    meta_weights_memory,
    tensor_bytes,
)
from trainables.loops.retrain import derived_options

MAX_CHOICES = 8  # architecture-choice patterns tried per supernet
REAL_BUILD_LIMIT = 256 * 2**20  # bytes of supernet weights built on the CPU to derive from
PICK_LOGIT = 10.0
CACHE_SIZE = 256  # estimates kept per process
_estimates: dict[tuple, StepMemory] = {}
_candidates: dict[tuple, list[Genotype]] = {}


def remembered(cache: dict, key: tuple, compute: Callable[[], Any]) -> Any:
    """cache[key], computed once (the oldest entry leaves when the cache is full)."""
    if key not in cache:
        if len(cache) >= CACHE_SIZE:
            cache.pop(next(iter(cache)))
        cache[key] = compute()
    return cache[key]


def remembered_step(key: tuple, compute: Callable[[], StepMemory]) -> StepMemory:
    """A step's estimate: kept in this process, and on disk between commands
    (`estimate_store`)."""
    return remembered(_estimates, key, lambda: StepMemory(**recalled(
        "memory", key, lambda: asdict(compute()))))


def network_key(space: str, options: dict[str, Any], channels: int) -> tuple:
    return space, json.dumps(options, sort_keys=True, default=str), channels


def step_key(kind: str, network: tuple, shape: StepShape) -> tuple:
    """Everything the step's memory depends on besides the network (`kind` stands for the
    parameter groups: the search's two optimisers or the retraining's one)."""
    return (kind, network, shape.batch_size, shape.channels, shape.patch_size,
            json.dumps(shape.loss, sort_keys=True, default=str), shape.optimizers)


def channels(study) -> int:
    return 3 if study.data.color else 1


def search_shape(study) -> StepShape:
    search = study.search
    optimizers = tuple((spec.name, spec.momentum)
                       for spec in (search.weight_optimizer, search.arch_optimizer))
    return StepShape(search.batch_size, channels(study), study.data.patch_size,
                     search.loss.model_dump(), optimizers,
                     (lambda m: m.weight_parameters(), lambda m: m.arch_parameters()))


def retrain_shape(study) -> StepShape:
    retrain = study.retrain
    return StepShape(retrain.batch_size, channels(study), study.data.patch_size,
                     retrain.loss.model_dump(),
                     ((retrain.optimizer.name, retrain.optimizer.momentum),),
                     (lambda m: list(m.parameters()),))


def search_memory(study) -> StepMemory:
    """One bilevel (or joint) search step of the study's supernet."""
    space, options = get_space(study.search_space.name), study.search_space.resolved_options()
    shape = search_shape(study)
    key = step_key("search", network_key(space.name, options, channels(study)), shape)
    return remembered_step(key, lambda: meta_step_memory(
        lambda: space.build_supernet(options, channels(study)), shape))


def retrain_memory(study, genotype_json: str | None = None,
                   supernet_bytes: int | None = None) -> StepMemory:
    """One retrain step of the given genotype's network, else of the costliest candidate
    (`supernet_bytes`: the search supernet's weights, when already counted)."""
    shape, options = retrain_shape(study), derived_options(study)
    if genotype_json is not None:
        genotypes = [Genotype.from_json(genotype_json)]
    else:
        genotypes = candidate_genotypes(study, supernet_bytes)
    space = get_space(study.search_space.name)
    if not genotypes:  # a supernet too large to build: bound the derived net by it
        key = step_key("retrain", network_key(space.name, options, channels(study)), shape)
        return remembered_step(key, lambda: meta_step_memory(
            lambda: space.build_supernet(options, channels(study)), shape))
    if study.retrain.stages:  # the largest network retrain.stages unrolls
        genotypes = [space.at_stages(g, max(study.retrain.stages)) for g in genotypes]
    estimates = [remembered_step(
        step_key("retrain", network_key(genotype.to_json(), options, channels(study)), shape),
        lambda g=genotype: meta_step_memory(
            lambda: build_derived_from_genotype(g, options, channels(study)), shape))
        for genotype in genotypes]
    return max(estimates, key=lambda estimate: estimate.total)


def candidate_genotypes(study, supernet_bytes: int | None = None) -> list[Genotype]:
    """The distinct genotypes derived with every architecture choice at its j-th candidate;
    [] when the supernet is too large to build for real."""
    space, options = get_space(study.search_space.name), study.search_space.resolved_options()
    key = network_key(space.name, options, channels(study))
    return remembered(_candidates, key, lambda: [Genotype.from_json(text) for text in recalled(
        "candidates", key, lambda: [genotype.to_json() for genotype in derived_candidates(
            space, options, channels(study), supernet_bytes)])])


def derived_candidates(space, options: dict[str, Any], channels: int,
                       supernet_bytes: int | None) -> list[Genotype]:
    if supernet_bytes is None:
        with torch.device("meta"):
            probe = space.build_supernet(options, channels)
        supernet_bytes = tensor_bytes(probe.parameters()) + tensor_bytes(probe.buffers())
    if supernet_bytes > REAL_BUILD_LIMIT:
        return []
    supernet = space.build_supernet(options, channels)
    params = [p for p in supernet.arch_parameters() if p.dim() > 0]
    widest = max((p.shape[-1] for p in params), default=1)
    found: dict[str, Genotype] = {}
    for choice in range(min(widest, MAX_CHOICES)):
        last = choice == min(widest, MAX_CHOICES) - 1
        pick(params, choice, to_end=last)
        genotype = supernet.derive()
        found.setdefault(genotype.arch_hash(), genotype)
    return list(found.values())


@torch.no_grad()
def pick(params: list[torch.nn.Parameter], choice: int, to_end: bool) -> None:
    """Make candidate `choice` of every architecture parameter's last axis the favourite
    (clipped to its length); `to_end` favours the last candidate of every longer axis."""
    for param in params:
        size = param.shape[-1]
        index = size - 1 if to_end else min(choice, size - 1)
        param.zero_()
        param.select(-1, index).fill_(PICK_LOGIT)


def study_memory(study, genotype_json: str | None, retrain: bool) -> dict[str, Any]:
    """{'search': StepMemory | None, 'retrain': StepMemory | None} of one arm's study."""
    search = None if genotype_json is not None else search_memory(study)
    supernet_bytes = search.weights if search is not None else None
    return {"search": search,
            "retrain": retrain_memory(study, genotype_json, supernet_bytes) if retrain else None}


def study_weights(study, genotype_json: str | None, retrain: bool) -> dict[str, Any]:
    """{'search': StepMemory | None, 'retrain': StepMemory | None} of one arm, weights and
    optimiser state only (`step` 0); the retraining's only when its genotype is given."""
    chans = channels(study)
    search = retrained = None
    if genotype_json is None:
        space, options = get_space(study.search_space.name), \
            study.search_space.resolved_options()
        shape = search_shape(study)
        search = remembered_step(step_key("weights", network_key(
            space.name, options, chans), shape), lambda: meta_weights_memory(
            lambda: space.build_supernet(options, chans), shape))
    elif retrain:
        genotype, options, shape = Genotype.from_json(genotype_json), derived_options(study), \
            retrain_shape(study)
        if study.retrain.stages:
            genotype = get_space(genotype.space).at_stages(genotype, max(study.retrain.stages))
        retrained = remembered_step(step_key("weights", network_key(
            genotype.to_json(), options, chans), shape), lambda: meta_weights_memory(
            lambda: build_derived_from_genotype(genotype, options, chans), shape))
    return {"search": search, "retrain": retrained}
