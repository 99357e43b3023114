"""Registry of search spaces by name, and the interface every family implements.

A search space bundles: a strict pydantic model of its options (what a study
file may set under `search_space.options`), a supernet factory, a factory for
the discrete network a genotype describes, and a validator for the
space-specific part of a genotype. Families register themselves with
`@register_space` in their own module; `searchspaces/__init__.py` imports them
explicitly, and Python runs it before any module of the package, so the registry is
complete wherever a `searchspaces` module is imported.

`check_genotype` is the space-aware half of loading a genotype (genotype.py checks the
document's structure and knows no space): it is installed into genotype.py here.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from typing import Any, ClassVar, get_args, get_origin

import torch
from pydantic import BaseModel, ConfigDict, model_validator
from torch import nn

from searchspaces.genotype import VERSION, Genotype, GenotypeError, check_spaces_with


class SpaceOptions(BaseModel):
    """Base of every space's options model: frozen, unknown keys are errors, values strictly
    of their type (no "yes" for a boolean, no "3" for a number, no NaN or infinity); a
    list is read as a tuple where the model keeps one. Every number has a lower and an
    upper bound (documented by the field)."""

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True, allow_inf_nan=False)

    @model_validator(mode="before")
    @classmethod
    def _lists_as_tuples(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            return data
        fields = cls.model_fields
        return {key: tuple(value) if isinstance(value, list) and key in fields
                and holds_tuple(fields[key].annotation) else value
                for key, value in data.items()}


def holds_tuple(annotation: Any) -> bool:
    """A tuple annotation, alone or in a union (`tuple[str, ...] | None`)."""
    return get_origin(annotation) is tuple or any(
        get_origin(arg) is tuple for arg in get_args(annotation))


class Supernet(nn.Module, ABC):
    """A relaxed (continuous) search network.

    `arch_parameters()` and `weight_parameters()` partition `parameters()`.
    Models hold no device code: callers move them.
    """

    @abstractmethod
    def arch_parameters(self) -> list[nn.Parameter]: ...

    def weight_parameters(self) -> list[nn.Parameter]:
        arch_ids = {id(p) for p in self.arch_parameters()}
        return [p for p in self.parameters() if id(p) not in arch_ids]

    @abstractmethod
    def derive(self) -> Genotype: ...

    def arch_distributions(self) -> list[torch.Tensor]:
        """Probability vectors (last dim sums to 1) whose entropy tracks search progress."""
        return []

    def arch_entropy(self) -> float:
        """Mean entropy (nats) of the architecture distributions, logged as search/alpha_entropy."""
        values = []
        for probs in self.arch_distributions():
            probs = probs.detach().clamp_min(1e-12)
            values.append((-(probs * probs.log()).sum(-1)).mean().item())
        return float(sum(values) / len(values)) if values else math.nan

    def on_epoch_start(self, epoch: int, num_epochs: int) -> None:
        """Hook for schedules inside the supernet that follow the epoch."""
        return None

    def on_step(self, step: int) -> None:
        """Hook called before every training step, `step` counted over the whole search
        from 0 (e.g. the superkernel's Gumbel temperature)."""
        return None

    def arch_penalty(self) -> torch.Tensor | None:
        """A scalar added to the loss of architecture steps only (e.g. a sparsity term on
        width gates); None adds nothing."""
        return None

    def search_metrics(self) -> dict[str, float]:
        """Extra per-epoch metrics of the search (e.g. search/temperature)."""
        return {}

    # --- random search with weight sharing (search.strategy: rsws, trainables/loops/rsws.py) ---
    def sample_architecture(self, generator: torch.Generator) -> Genotype:
        """An architecture of the space drawn uniformly with `generator`."""
        raise NotImplementedError(self._cannot_sample())

    def fix_architecture(self, genotype: Genotype) -> None:
        """Until `release_architecture`, forward runs `genotype` alone on the shared
        weights: gradients reach only the weights it uses."""
        raise NotImplementedError(self._cannot_sample())

    def release_architecture(self) -> None:
        """Back to the relaxed supernet, its architecture parameters as before the fix."""
        raise NotImplementedError(self._cannot_sample())

    def _cannot_sample(self) -> str:
        return (f"search.strategy: rsws: the supernet {type(self).__name__} cannot sample and "
                "fix architectures (sample_architecture, fix_architecture, "
                "release_architecture)")


class SearchSpace(ABC):
    """One registered family of architectures."""

    name: ClassVar[str]
    options_model: ClassVar[type[SpaceOptions]]
    # Name of the search strategy this space uses by default ("bilevel" or "joint").
    default_strategy: ClassVar[str] = "bilevel"
    # Order of the two steps of bilevel alternation: "arch_first" (DARTS first order,
    # HiNAS: architecture on Train-A, then weights on Train-W) or "weights_first"
    # (MoD-NAS Algorithm 1: weights, then architecture).
    bilevel_order: ClassVar[str] = "arch_first"
    # False for a fixed reference network (a baseline): arms give its genotype, nothing
    # is searched, and the conformance suite of supernets does not apply.
    searchable: ClassVar[bool] = True
    # The newest genotype version this space writes; it reads 1 to this (genotype.py).
    genotype_version: ClassVar[int] = 1
    # True when `inherit` can start the derived network from its supernet's trained
    # weights (`retrain.from: inherit`, the single-shot procedure of Superkernel NAS).
    can_inherit: ClassVar[bool] = False

    def parse_options(self, options: dict[str, Any] | None) -> SpaceOptions:
        return self.options_model.model_validate(options or {})

    def check_data(self, options: SpaceOptions, patch_size: int) -> None:
        """Raise ValueError("options.<field>: ...") when the options cannot work on
        patches of `patch_size` (e.g. more U-net levels than the patch can halve)."""
        return None

    @abstractmethod
    def build_supernet(self, options: dict[str, Any], in_channels: int) -> Supernet: ...

    @abstractmethod
    def build_derived(
        self, genotype: Genotype, options: dict[str, Any], in_channels: int
    ) -> nn.Module: ...

    def check_stages(self, options: SpaceOptions, stages: list[int]) -> None:
        """Raise ValueError("<stages>: why") unless the networks this space searches with
        `options` can be retrained at each of `stages` unfolded stages (retrain.stages)."""
        raise ValueError(f"{stages}: search space {self.name!r} has no stages to retrain at")

    def at_stages(self, genotype: Genotype, stages: int) -> Genotype:
        """`genotype`'s network at `stages` stages (retrain.stages); ValueError if it has
        none or cannot be unrolled to that many."""
        raise ValueError(f"{stages}: search space {self.name!r} has no stages to retrain at")

    def inherit(self, supernet: Supernet, genotype: Genotype, derived: nn.Module) -> None:
        """Load into `derived` (the network of `genotype`) the trained weights of `supernet`
        that it keeps, so that it computes the supernet's function under that choice."""
        raise NotImplementedError(f"search space {self.name!r} cannot inherit weights")

    def describe(self, genotype: Genotype) -> str:
        """A human-readable architecture summary (logged as architecture.txt)."""
        import json

        lines = [f"{genotype.space} architecture {genotype.arch_hash()}"]
        lines += [f"  {key}: {json.dumps(value)}" for key, value in genotype.arch.items()]
        return "\n".join(lines)

    @abstractmethod
    def validate_arch(self, genotype: Genotype) -> None:
        """Raise ValueError naming the offending field when `genotype.arch` is malformed."""

    # --- conformance-suite hooks -------------------------------------------------
    @abstractmethod
    def tiny_options(self) -> dict[str, Any]:
        """Options for a supernet small enough for CPU tests (well under a second)."""

    @abstractmethod
    def set_one_hot(self, supernet: Supernet) -> Genotype:
        """Set `supernet`'s architecture parameters to a hand-chosen one-hot
        configuration and return the genotype `derive()` must then yield."""


_REGISTRY: dict[str, SearchSpace] = {}


def register_space(cls: type[SearchSpace]) -> type[SearchSpace]:
    """Class decorator: instantiate and register a search space under `cls.name`."""
    if cls.name in _REGISTRY:
        raise ValueError(f"search space {cls.name!r} registered twice")
    _REGISTRY[cls.name] = cls()
    return cls


def get_space(name: str) -> SearchSpace:
    if name not in _REGISTRY:
        known = ", ".join(sorted(_REGISTRY)) or "none"
        raise KeyError(f"unknown search space {name!r} (known: {known})")
    return _REGISTRY[name]


def space_names() -> list[str]:
    return sorted(_REGISTRY)


def build_derived_from_genotype(
    genotype: Genotype, options: dict[str, Any] | None, in_channels: int
) -> nn.Module:
    space = get_space(genotype.space)
    parsed = space.parse_options(options)
    return space.build_derived(genotype, parsed.model_dump(), in_channels)


def check_genotype(genotype: Genotype, source: str = "genotype") -> None:
    """Raise GenotypeError("<source>: ...") unless `genotype`'s space is registered, reads
    its version (1 to the space's `genotype_version`) and accepts its arch."""
    try:
        space = get_space(genotype.space)
        newest = space.genotype_version
        if not VERSION <= genotype.version <= newest:
            raise GenotypeError(f"{source}: unsupported version {genotype.version!r} (space "
                                f"{genotype.space!r} reads {VERSION}-{newest})")
        space.validate_arch(genotype)
    except KeyError as error:  # an unknown space
        raise GenotypeError(f"{source}: {error.args[0]}") from None
    except GenotypeError:
        raise
    except (ValueError, TypeError) as error:
        raise GenotypeError(f"{source}: {error}") from None

check_spaces_with(check_genotype)
