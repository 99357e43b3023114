"""The channel plan a MoD-NAS genotype implies, and its parameter count.

Read from a validated genotype `arch` (format in `space.py`) without building
any module: which layers are alive, and how many channels each layer reads
and writes. The derived network (`derived.py`) is built from this plan, and
`parameter_count` adds up the hand-written per-op counts of
`operations.OPS`, so tests can check the built network against it.

Channel flow of one denoiser: the stem writes its channels; a normal layer reads
the output of its `input` (0 = the block input) and writes `channels` (a skip
writes what it reads); the block output is layer 3's output; a sampling layer
reads the block output; the input of decoding block l < L-1 is the join of the
up-sampled output of block l+1 with the skip of level l: with `skip_join:
concat` half of (up + the down-sampling layer's width) (`skeleton.ConcatJoin`),
with `add` max(up, block output of encoding level l) (`skeleton.add_padded`);
the head reads decoding block 0's output. Layers that layer 3 does not reach
by following `input` are dead: the derived network drops them. Genotypes of
version 1 have no `skip_join` / `stem` keys: `add` and `searched`
(`arch_structure`); with `share_architecture` the one denoiser counts T times.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any

from searchspaces.modnas.operations import OPS, conv_parameters
from searchspaces.modnas.skeleton import JOIN_KERNELS, join_channels

STRUCTURE_DEFAULTS = {"skip_join": "add", "stem": "searched"}  # absent in version-1 genotypes


def arch_structure(arch: dict[str, Any]) -> tuple[str, str]:
    """(skip_join, stem) of an arch; version 1 had neither key (add joins, searched stem)."""
    return (arch.get("skip_join", STRUCTURE_DEFAULTS["skip_join"]),
            arch.get("stem", STRUCTURE_DEFAULTS["stem"]))


@dataclass(frozen=True)
class LayerPlan:
    op: str
    in_channels: int
    out_channels: int
    input: int  # 0 = block input, j = normal layer j; -1: the block output (sampling layers)
    alive: bool


@dataclass(frozen=True)
class BlockPlan:
    in_channels: int
    layers: tuple[LayerPlan, ...]  # normal layers 1..3
    sample: LayerPlan | None  # down (encoder) / up (decoder l > 0)

    @property
    def out_channels(self) -> int:
        """Channels of the block output (layer 3)."""
        return self.layers[-1].out_channels


def alive_layers(layers: list[dict[str, Any]]) -> set[int]:
    """Normal layers (1-based) on the input chain that ends at layer 3."""
    alive, layer = set(), len(layers)
    while layer > 0:
        alive.add(layer)
        layer = layers[layer - 1]["input"]
    return alive


def block_plan(block: dict[str, Any], in_channels: int, sample_key: str | None) -> BlockPlan:
    alive = alive_layers(block["layers"])
    widths = [in_channels]  # widths[j] = channels of output j (0 = block input)
    plans = []
    for j, layer in enumerate(block["layers"], start=1):
        reads = widths[layer["input"]]
        writes = reads if layer["channels"] is None else layer["channels"]
        plans.append(LayerPlan(layer["op"], reads, writes, layer["input"], j in alive))
        widths.append(writes)
    sample = None
    if sample_key is not None:
        spec = block[sample_key]
        sample = LayerPlan(spec["op"], widths[-1], spec["channels"], -1, True)
    return BlockPlan(in_channels, tuple(plans), sample)


def skip_channels(encoder: BlockPlan, skip_join: str) -> int:
    """Width of a level's skip: the down layer's conv (concat) or the block output (add)."""
    return encoder.sample.out_channels if skip_join in JOIN_KERNELS else encoder.out_channels


def joined_channels(up: int, skip: int, skip_join: str) -> int:
    return join_channels(up, skip) if skip_join in JOIN_KERNELS else max(up, skip)


def unet_plan(denoiser: dict[str, Any], skip_join: str = "add"
              ) -> tuple[list[BlockPlan], list[BlockPlan]]:
    """(encoder plans by level, decoder plans by level) of one denoiser."""
    encoders, features = [], denoiser["stem"]["channels"]
    for block in denoiser["encoder"]:
        encoders.append(block_plan(block, features, "down"))
        features = encoders[-1].sample.out_channels
    levels = len(denoiser["decoder"])
    decoders: list[BlockPlan | None] = [None] * levels
    for level in reversed(range(levels)):
        if level < levels - 1:
            skip = skip_channels(encoders[level], skip_join)
            features = joined_channels(features, skip, skip_join)
        decoders[level] = block_plan(denoiser["decoder"][level], features,
                                     "up" if level > 0 else None)
        if level > 0:
            features = decoders[level].sample.out_channels
    return encoders, decoders


def layer_parameters(layer: LayerPlan) -> int:
    if not layer.alive:
        return 0
    return OPS[layer.op].parameters(layer.in_channels, layer.out_channels)


def block_parameters(block: BlockPlan) -> int:
    total = sum(layer_parameters(layer) for layer in block.layers)
    return total + (layer_parameters(block.sample) if block.sample else 0)


def join_parameters(encoders: list[BlockPlan], decoders: list[BlockPlan], kernel: int = 3) -> int:
    """The k x k convs of the concatenating joins, level l reading up(l + 1) + skip(l)."""
    total = 0
    for level, encoder in enumerate(encoders):
        up, skip = decoders[level + 1].sample.out_channels, encoder.sample.out_channels
        total += conv_parameters(up + skip, join_channels(up, skip), kernel)
    return total


def denoiser_parameters(denoiser: dict[str, Any], in_channels: int,
                        structure: tuple[str, str] = ("add", "searched")) -> int:
    skip_join, stem = structure
    encoders, decoders = unet_plan(denoiser, skip_join)
    blocks = sum(block_parameters(block) for block in encoders + decoders)
    stem_channels = denoiser["stem"]["channels"]
    stem_and_head = conv_parameters(in_channels, stem_channels, 3) + conv_parameters(
        decoders[0].out_channels, in_channels, 3)
    if stem == "fixed":
        stem_and_head += conv_parameters(stem_channels, stem_channels, 3)
    joins = join_parameters(encoders, decoders, JOIN_KERNELS[skip_join]) \
        if skip_join in JOIN_KERNELS else 0
    return blocks + stem_and_head + joins


def parameter_count(arch: dict[str, Any], in_channels: int) -> int:
    """Parameters of the derived network of `arch`, from the plan alone."""
    structure = arch_structure(arch)
    denoisers = sum(denoiser_parameters(d, in_channels, structure) for d in arch["denoisers"])
    if arch.get("share_architecture", False):  # one architecture, T copies of its weights
        denoisers *= arch["stages"]
    step_sizes = 2 * arch["stages"] if arch["unfolding"] else 0  # delta_t, eta_t
    return denoisers + step_sizes


def full_width_arch(arch: dict[str, Any]) -> dict[str, Any]:
    """The same ops and paths with every searched channel count at the full width."""
    wide = copy.deepcopy(arch)
    for denoiser in wide["denoisers"]:
        if arch_structure(arch)[1] == "searched":  # a fixed stem keeps its width
            denoiser["stem"]["channels"] = arch["width"]
        for block in denoiser["encoder"] + denoiser["decoder"]:
            for layer in [*block["layers"], block.get("down"), block.get("up")]:
                if layer is not None and layer["channels"] is not None:
                    layer["channels"] = arch["width"]
    return wide
