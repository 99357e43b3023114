"""Strict validation of a MoD-NAS genotype's `arch` (format in `space.py`).

Every problem raises ValueError naming the field by its path, e.g.
`arch.denoisers[0].encoder[1].layers[2].channels: 12 is not a multiple of
channel_multiple 8 (nor the full width 64)`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from searchspaces.genotype import Genotype, require_keys
from searchspaces.modnas.operations import OPS, SKIP
from searchspaces.modnas.unet import NUM_LAYERS

ARCH_KEYS = ("stages", "unfolding", "levels", "width", "channel_multiple", "depth_search",
             "denoisers")
STRUCTURE_KEYS = {"skip_join": ("concat", "add"), "stem": ("fixed", "searched")}  # version 2
DEPTH_SEARCH = ("dense", "skip_op")


@dataclass(frozen=True)
class Rules:
    primitives: frozenset[str]
    width: int
    multiple: int
    depth_search: str
    fixed_stem: bool = False


def require_int(value: Any, field: str, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ValueError(f"{field}: expected an integer >= {minimum}, got {value!r}")
    return value


def require_list(value: Any, length: int, field: str, what: str) -> list[Any]:
    if not isinstance(value, list) or len(value) != length:
        raise ValueError(f"{field}: expected a list of {length} {what}")
    return value


def validate_arch(genotype: Genotype) -> None:
    """Raise ValueError naming the offending field if `genotype` is not a modnas genotype."""
    for name in genotype.primitives:
        if name not in OPS:
            raise ValueError(f"primitives: unknown op {name!r}")
    structure = tuple(STRUCTURE_KEYS) if genotype.version >= 2 else ()
    arch = require_keys(genotype.arch, ARCH_KEYS + structure, "arch")
    for key in structure:
        if arch[key] not in STRUCTURE_KEYS[key]:
            raise ValueError(f"arch.{key}: expected one of {STRUCTURE_KEYS[key]}, "
                             f"got {arch[key]!r}")
    stages = require_int(arch["stages"], "arch.stages", 1)
    if not isinstance(arch["unfolding"], bool):
        raise ValueError(f"arch.unfolding: expected true or false, got {arch['unfolding']!r}")
    if not arch["unfolding"] and stages != 1:
        raise ValueError(f"arch.stages: without unfolding there is one denoiser, got {stages}")
    if arch["depth_search"] not in DEPTH_SEARCH:
        raise ValueError(f"arch.depth_search: expected one of {DEPTH_SEARCH}, "
                         f"got {arch['depth_search']!r}")
    levels = require_int(arch["levels"], "arch.levels", 1)
    width = require_int(arch["width"], "arch.width", 1)
    multiple = require_int(arch["channel_multiple"], "arch.channel_multiple", 1)
    if multiple > width:
        raise ValueError(f"arch.channel_multiple: {multiple} is larger than the width {width}")
    rules = Rules(frozenset(genotype.primitives), width, multiple, arch["depth_search"],
                  arch.get("stem") == "fixed")
    denoisers = require_list(arch["denoisers"], stages, "arch.denoisers", "denoisers (stages)")
    for stage, denoiser in enumerate(denoisers):
        validate_denoiser(denoiser, levels, rules, f"arch.denoisers[{stage}]")


def validate_denoiser(denoiser: Any, levels: int, rules: Rules, field: str) -> None:
    require_keys(denoiser, ("stem", "encoder", "decoder"), field)
    stem = require_keys(denoiser["stem"], ("channels",), f"{field}.stem")
    if rules.fixed_stem:  # not searched: any width up to the full one
        require_int(stem["channels"], f"{field}.stem.channels", 1)
        if stem["channels"] > rules.width:
            raise ValueError(f"{field}.stem.channels: {stem['channels']} is above the width "
                             f"{rules.width}")
    else:
        validate_channels(stem["channels"], True, rules, f"{field}.stem.channels")
    encoder = require_list(denoiser["encoder"], levels - 1, f"{field}.encoder", "blocks")
    decoder = require_list(denoiser["decoder"], levels, f"{field}.decoder", "blocks")
    for level, block in enumerate(encoder):
        validate_block(block, "down", rules, f"{field}.encoder[{level}]")
    for level, block in enumerate(decoder):
        validate_block(block, "up" if level > 0 else None, rules, f"{field}.decoder[{level}]")


def validate_block(block: Any, sample_role: str | None, rules: Rules, field: str) -> None:
    keys = ("layers",) if sample_role is None else ("layers", sample_role)
    require_keys(block, keys, field)
    layers = require_list(block["layers"], NUM_LAYERS, f"{field}.layers", "layers")
    for j, layer in enumerate(layers, start=1):
        where = f"{field}.layers[{j - 1}]"
        require_keys(layer, ("op", "channels", "input"), where)
        validate_layer(layer, "normal", rules, where)
        validate_input(layer["input"], j, rules, f"{where}.input")
    if sample_role is not None:
        where = f"{field}.{sample_role}"
        validate_layer(require_keys(block[sample_role], ("op", "channels"), where), sample_role,
                       rules, where)


def validate_layer(layer: dict[str, Any], role: str, rules: Rules, field: str) -> None:
    op = layer["op"]
    if not isinstance(op, str) or op not in OPS or OPS[op].role != role:
        raise ValueError(f"{field}.op: unknown {role} op {op!r}")
    if op not in rules.primitives:
        raise ValueError(f"{field}.op: {op!r} is not in the genotype's primitives")
    if op == SKIP and rules.depth_search != "skip_op":
        raise ValueError(f"{field}.op: 'skip' is a candidate only with depth_search skip_op")
    validate_channels(layer["channels"], OPS[op].gated, rules, f"{field}.channels")


def validate_channels(value: Any, gated: bool, rules: Rules, field: str) -> None:
    if not gated:
        if value is not None:
            raise ValueError(f"{field}: must be null for an op without channels of its own")
        return
    require_int(value, field, 1)
    if value > rules.width:
        raise ValueError(f"{field}: {value} is above the width {rules.width}")
    if value % rules.multiple and value != rules.width:
        raise ValueError(f"{field}: {value} is not a multiple of channel_multiple "
                         f"{rules.multiple} (nor the full width {rules.width})")


def validate_input(value: Any, layer: int, rules: Rules, field: str) -> None:
    require_int(value, field, 0)
    if layer == 1 and value != 0:
        raise ValueError(f"{field}: layer 1 reads the block input (0), got {value}")
    if rules.depth_search == "skip_op" and value != layer - 1:
        raise ValueError(f"{field}: layers are chained with depth_search skip_op "
                         f"(expected {layer - 1}), got {value}")
    if value > layer - 1:
        raise ValueError(f"{field}: {value} out of range (layer {layer} reads 0..{layer - 1})")
