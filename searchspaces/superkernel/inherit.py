"""Single-shot distillation: the derived network starts from the supernet's trained weights
(Mozejko et al. 2020, abstract: "single-shot training"; Sec. 4.5.5: once structure and
weights are trained, the model with the chosen kernel and filter sizes is distilled).

Every module outside the searchable slots has the same shape in both networks (one
code builds them, `network.py`) and is copied. Inside a DCR block (`blocks.py`) a
slot keeps, of its maximal kernel, the rows of the filters it keeps (the first f, or
the genotype's indices for the filterwise types) cropped to their centred k x k
window, and every convolution that reads the block's dense concatenation [x, h1, h2]
keeps the input columns of those filters. Under the one-hot choice the supernet's
dropped filters output exactly 0 (kernel and bias masked, then the activation), so the
distilled network computes the supernet's function; the test compares the two
(tests/searchspaces/test_superkernel_inherit.py).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from searchspaces.genotype import Genotype
from searchspaces.superkernel.blocks import DCRBlock
from searchspaces.superkernel.derived import kept_filters
from searchspaces.superkernel.operations import SuperConv2d

Weights = dict[str, torch.Tensor]


def inherit_weights(supernet: nn.Module, genotype: Genotype, derived: nn.Module) -> None:
    """Load `supernet`'s trained weights into `derived`, the network of `genotype`."""
    source = supernet.network.state_dict()
    if not any(isinstance(module, SuperConv2d) for module in supernet.modules()):
        derived.load_state_dict(source, strict=True)  # the fixed-kernel baseline: same network
        return
    blocks = {name: module for name, module in supernet.network.named_modules()
              if isinstance(module, DCRBlock)}
    mapped: Weights = {}
    for name, block in derived.named_modules():
        if isinstance(block, DCRBlock):
            mapped.update(block_weights(name, blocks[name], block, genotype.arch["layers"]))
    for key in derived.state_dict():
        if key not in mapped:
            if key not in source:
                raise KeyError(f"inherit: the supernet has no weights for {key!r}")
            mapped[key] = source[key]
    derived.load_state_dict(mapped, strict=True)


def block_weights(path: str, searched: DCRBlock, distilled: DCRBlock,
                  layers: dict[str, Any]) -> Weights:
    """The distilled block's slot and output-conv weights, keyed by their derived names."""
    first, second = searched.first, searched.second
    kept_first = torch.tensor(kept_filters(layers[first.slot_name]))
    kept_second = torch.tensor(kept_filters(layers[second.slot_name]))
    inputs = torch.arange(first.weight.shape[1])  # x: the block's own channels
    dense = torch.cat([inputs, len(inputs) + kept_first])  # [x, h1]: the second slot reads
    fused = torch.cat([dense, len(inputs) + first.out_channels + kept_second])  # [x, h1, h2]
    weights = slot_weights(f"{path}.first", first, distilled.first, kept_first, inputs)
    weights.update(slot_weights(f"{path}.second", second, distilled.second, kept_second, dense))
    name, conv = plain_conv(distilled.fuse)
    source = searched.fuse.get_submodule(name)
    weights[f"{path}.fuse.{name}.weight"] = source.weight.detach()[:, fused]
    weights[f"{path}.fuse.{name}.bias"] = source.bias.detach()
    return weights


def slot_weights(path: str, searched: SuperConv2d, distilled: nn.Module, rows: torch.Tensor,
                 columns: torch.Tensor) -> Weights:
    """A slot's kept filters (`rows`) on its kept inputs (`columns`), centred k x k window;
    its other parameters (an activation's slope) copied by name."""
    name, conv = plain_conv(distilled)
    size, kernel = max(searched.kernel_sizes), conv.kernel_size[0]
    window = slice((size - kernel) // 2, (size - kernel) // 2 + kernel)
    weight = searched.weight.detach()[rows][:, columns][:, :, window, window]
    weights = {f"{path}.{name}.weight": weight, f"{path}.{name}.bias": searched.bias.detach()[rows]}
    own = {key: value for key, value in searched.state_dict().items()
           if key not in ("weight", "bias") and not key.startswith("distribution.")}
    for key in distilled.state_dict():
        if not key.startswith(f"{name}."):
            weights[f"{path}.{key}"] = matching(own, key, path)
    return weights


def plain_conv(module: nn.Module) -> tuple[str, nn.Conv2d]:
    """The convolution of a distilled act(conv) module, with its name inside it."""
    return next((name, child) for name, child in module.named_children()
                if isinstance(child, nn.Conv2d))


def matching(own: Weights, key: str, path: str) -> torch.Tensor:
    """The supernet slot's tensor named like `key` (last component; e.g. a PReLU slope)."""
    leaf = key.rpartition(".")[2]
    found = [value for name, value in own.items() if name.rpartition(".")[2] == leaf]
    if len(found) != 1:
        raise KeyError(f"inherit: no single supernet tensor for {path}.{key}")
    return found[0]
