"""One suite over every registered search space (timm-style): forward shapes,
gradients on every parameter, the arch/weight partition, derivation of a known
one-hot architecture, the derived network, and genotype files."""

from __future__ import annotations

import dataclasses
import functools
import json
import math

import pytest
import torch
import torch.nn.functional as F

from searchspaces.genotype import Genotype, GenotypeError
from searchspaces.registry import build_derived_from_genotype, get_space, space_names

SPACES = [name for name in space_names() if get_space(name).searchable]  # supernets
SIZE = 16


def _supernet(name: str, in_channels: int = 1):
    torch.manual_seed(0)
    space = get_space(name)
    return space, space.build_supernet(space.tiny_options(), in_channels)


def _loss(out: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    return F.mse_loss(out, target) + (out - target).abs().mean()


@functools.cache
def _one_hot_genotype(name: str) -> Genotype:
    space, supernet = _supernet(name)
    return space.set_one_hot(supernet)


def test_spaces_registered():
    assert "hinas" in SPACES


@pytest.mark.parametrize("in_channels", [1, 3])
@pytest.mark.parametrize("name", SPACES)
def test_supernet_output_shape(name, in_channels):
    _, supernet = _supernet(name, in_channels)
    image = torch.rand(2, in_channels, SIZE, SIZE)
    out = supernet(image)
    assert out.shape == image.shape
    assert torch.isfinite(out).all()


@pytest.mark.parametrize("name", SPACES)
def test_every_parameter_gets_a_gradient(name):
    _, supernet = _supernet(name)
    image, target = torch.rand(2, 1, SIZE, SIZE), torch.rand(2, 1, SIZE, SIZE)
    _loss(supernet(image), target).backward()
    for param_name, param in supernet.named_parameters():
        assert param.grad is not None, param_name
        assert torch.isfinite(param.grad).all(), param_name
        assert param.grad.abs().sum() > 0, f"{param_name}: gradient is zero everywhere"
    assert supernet.arch_parameters(), "a supernet needs architecture parameters"


@pytest.mark.parametrize("name", SPACES)
def test_arch_and_weight_parameters_partition_parameters(name):
    _, supernet = _supernet(name)
    arch = {id(p) for p in supernet.arch_parameters()}
    weights = {id(p) for p in supernet.weight_parameters()}
    everything = {id(p) for p in supernet.parameters()}
    assert arch.isdisjoint(weights)
    assert arch | weights == everything
    assert len(arch) == len(supernet.arch_parameters())
    assert len(weights) == len(supernet.weight_parameters())


@pytest.mark.parametrize("name", SPACES)
def test_set_one_hot_then_derive(name):
    space, supernet = _supernet(name)
    expected = space.set_one_hot(supernet)
    derived = supernet.derive()
    assert derived.space == name
    assert derived.canonical() == expected.canonical()
    assert derived.arch_hash() == expected.arch_hash()


@pytest.mark.parametrize("in_channels", [1, 3])
@pytest.mark.parametrize("name", SPACES)
def test_derived_network_runs_and_trains(name, in_channels):
    torch.manual_seed(0)
    space = get_space(name)
    genotype = _one_hot_genotype(name)
    net = build_derived_from_genotype(genotype, space.tiny_options(), in_channels)
    image, target = torch.rand(2, in_channels, SIZE, SIZE), torch.rand(2, in_channels, SIZE, SIZE)
    out = net(image)
    assert out.shape == image.shape
    loss = _loss(out, target)
    loss.backward()
    assert math.isfinite(loss.item())
    with torch.no_grad():  # one plain SGD step (torch.optim's first import costs seconds)
        for param in net.parameters():
            param -= 0.01 * param.grad
    assert _loss(net(image), target).item() < loss.item()


@pytest.mark.parametrize("name", SPACES)
def test_genotype_json_round_trip(name, tmp_path):
    genotype = _one_hot_genotype(name)
    genotype = dataclasses.replace(genotype, provenance={"trial": "t0"})  # keeps the version
    loaded = Genotype.from_json(genotype.to_json())
    assert loaded == genotype
    assert loaded.canonical() == genotype.canonical()
    assert loaded.arch_hash() == genotype.arch_hash()
    assert loaded.provenance == {"trial": "t0"}
    assert Genotype.load(genotype.save(tmp_path / "genotype.json")).canonical() == (
        genotype.canonical()
    )


def _corruptions():
    return {
        "wrong format": lambda d: d.update(format="darts-genotype"),
        "wrong version": lambda d: d.update(version=99),
        "unknown space": lambda d: d.update(space="no-such-space"),
        "arch not an object": lambda d: d.update(arch=[1, 2]),
        "empty arch": lambda d: d.update(arch={}),
        "unknown arch key": lambda d: d["arch"].update(bogus_key=1),
        "unknown top-level key": lambda d: d.update(extra=1),
    }


@pytest.mark.parametrize("corruption", sorted(_corruptions()))
@pytest.mark.parametrize("name", SPACES)
def test_malformed_genotypes_are_rejected(name, corruption):
    document = json.loads(_one_hot_genotype(name).to_json())
    _corruptions()[corruption](document)
    with pytest.raises(GenotypeError):
        Genotype.from_json(json.dumps(document))


@pytest.mark.parametrize("name", SPACES)
def test_not_json_is_rejected(name):
    with pytest.raises(GenotypeError):
        Genotype.from_json("{not json")
    with pytest.raises(GenotypeError):
        Genotype.from_json("[1, 2, 3]")


@pytest.mark.parametrize("name", SPACES)
def test_arch_entropy_finite_and_drops_after_one_hot(name):
    space, supernet = _supernet(name)
    initial = supernet.arch_entropy()
    assert math.isfinite(initial) and initial > 0
    space.set_one_hot(supernet)
    after = supernet.arch_entropy()
    assert math.isfinite(after)
    assert after < initial


@pytest.mark.parametrize("name", SPACES)
def test_options_reject_unknown_keys(name):
    space = get_space(name)
    with pytest.raises(ValueError):
        space.parse_options({**space.tiny_options(), "no_such_option": 1})
