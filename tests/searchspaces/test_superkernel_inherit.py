"""Single-shot distillation (Mozejko et al. 2020, Sec. 4.5.5): the distilled network starts
from the supernet's trained weights and computes the supernet's function under the argmax
(one-hot) choice; genotype version 2 records which filters a filterwise slot keeps,
version 1 still loads."""

from __future__ import annotations

import json

import pytest
import torch

from searchspaces.genotype import Genotype, GenotypeError
from searchspaces.registry import get_space
from searchspaces.superkernel.distributions import DISTRIBUTIONS, Choice

SPACE = get_space("superkernel")


def _trained_supernet(kind: str, seed: int, **overrides):
    """A tiny supernet whose weights and logits are random, as if trained."""
    torch.manual_seed(seed)
    options = {**SPACE.tiny_options(), "superkernel": kind, **overrides}
    supernet = SPACE.build_supernet(options, 1)
    with torch.no_grad():
        for param in supernet.weight_parameters():  # kernels keep their scale: outputs O(1)
            param.copy_(param * (1 + 0.2 * torch.randn_like(param)) if param.ndim > 1
                        else 0.5 * torch.randn_like(param))
        for param in supernet.arch_parameters():
            param.copy_(2 * torch.randn_like(param))
    return supernet, options


def _one_hot(supernet, genotype: Genotype) -> None:
    """Make the supernet's distributions one-hot on the genotype's choice."""
    sizes = list(supernet.options.kernel_sizes)
    choices = {name: Choice(sizes.index(entry[0]), entry[1],
                            tuple(entry[2]) if len(entry) > 2 else None)
               for name, entry in genotype.arch["layers"].items()}
    supernet.load_choices(choices)


def _distilled(supernet, options, genotype):
    derived = SPACE.build_derived(genotype, options, 1)
    SPACE.inherit(supernet, genotype, derived)
    return derived


@pytest.mark.parametrize("mode", ["full", "separate"])
@pytest.mark.parametrize("kind", DISTRIBUTIONS)
def test_distilled_network_computes_the_one_hot_supernet(kind, mode):
    supernet, options = _trained_supernet(kind, seed=1, mode=mode, depth=1, width=6)
    genotype = supernet.derive()
    derived = _distilled(supernet, options, genotype)
    _one_hot(supernet, genotype)
    assert supernet.derive() == genotype
    image = torch.rand(2, 1, 12, 10)
    supernet.eval(), derived.eval()
    with torch.no_grad():
        expected, got = supernet(image), derived(image)
    assert torch.allclose(got, expected, atol=1e-5), (got - expected).abs().max()
    assert not torch.allclose(expected, image, atol=1e-3)  # the residual branches do work


@pytest.mark.parametrize("kind", ["filterwise", "filterwise_attention"])
def test_filterwise_genotypes_record_the_kept_filters(kind):
    supernet, _ = _trained_supernet(kind, seed=2, width=8)
    genotype = supernet.derive()
    assert genotype.version == 2
    entries = list(genotype.arch["layers"].values())
    assert all(len(entry) == 3 and len(entry[2]) == entry[1] for entry in entries)
    assert any(entry[2] != list(range(entry[1])) for entry in entries)  # not just prefixes
    assert Genotype.from_json(genotype.to_json()) == genotype


@pytest.mark.parametrize("backbone, layout, activation", [
    ("resunet", "paper", "prelu"), ("resunet", "compact", "relu"),
    ("attention_unet", "paper", "prelu"),
])
def test_inheritance_on_every_backbone_with_two_subnets(backbone, layout, activation):
    supernet, options = _trained_supernet("filterwise", seed=3, backbone=backbone, depth=1,
                                          num_subnets=2, width=4, kernel_sizes=[1, 3, 5],
                                          layout=layout, activation=activation)
    genotype = supernet.derive()
    derived = _distilled(supernet, options, genotype)
    _one_hot(supernet, genotype)
    image = torch.rand(1, 1, 8, 8)
    supernet.eval(), derived.eval()
    with torch.no_grad():
        assert torch.allclose(derived(image), supernet(image), atol=1e-5)


def test_no_superkernel_baseline_inherits_its_whole_network():
    supernet, options = _trained_supernet("none", seed=4)
    genotype = supernet.derive()
    derived = _distilled(supernet, options, genotype)
    image = torch.rand(1, 1, 8, 8)
    with torch.no_grad():
        assert torch.equal(derived(image), supernet(image))


def test_version_1_genotypes_load_as_the_first_filters():
    supernet, options = _trained_supernet("filterwise", seed=5)
    current = supernet.derive()
    old = json.loads(current.to_json())
    old["version"] = 1
    old["arch"]["layers"] = {name: entry[:2] for name, entry in old["arch"]["layers"].items()}
    loaded = Genotype.from_dict(old)
    assert loaded.version == 1 and loaded.arch_hash() != current.arch_hash()
    derived = _distilled(supernet, options, loaded)  # the first f filters of each slot
    first = next(iter(loaded.arch["layers"]))
    assert derived.state_dict()  # builds and loads
    _one_hot(supernet, loaded)
    image = torch.rand(1, 1, 8, 8)
    supernet.eval(), derived.eval()
    with torch.no_grad():
        assert torch.allclose(derived(image), supernet(image), atol=1e-5)
    bad = json.loads(json.dumps(old))
    bad["arch"]["layers"][first] = [*bad["arch"]["layers"][first], [0]]
    with pytest.raises(GenotypeError, match=f"arch.layers.{first}: expected"):
        Genotype.from_dict(bad)  # indices are a version-2 field


@pytest.mark.parametrize("indices, message", [
    ([0], "expected a list of the"), ([1, 0], "unique and ascending"),
    ([0, 99], "beyond the level width"), ("01", "expected a list"),
    ([0, -1], "expected an integer >= 0"),
])
def test_malformed_filter_indices_name_the_slot(indices, message):
    supernet, _ = _trained_supernet("filterwise", seed=6)
    data = json.loads(supernet.derive().to_json())
    name = next(iter(data["arch"]["layers"]))
    data["arch"]["layers"][name] = [data["arch"]["layers"][name][0], 2, indices]
    with pytest.raises(GenotypeError, match=f"arch.layers.{name}.*{message}"):
        Genotype.from_dict(data)


def test_versions_beyond_the_space_are_refused():
    data = json.loads(_trained_supernet("joint", seed=7)[0].derive().to_json())
    for version in (0, 3, "2", True):
        with pytest.raises(GenotypeError, match="unsupported version"):
            Genotype.from_dict({**data, "version": version})
