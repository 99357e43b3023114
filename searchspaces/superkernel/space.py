"""The registered "superkernel" search space (options in `options.py`): factories,
weight inheritance, genotype validation (Mozejko et al., "Superkernel Neural Architecture
Search for Image Denoising", CVPRW 2020).

Genotype `arch` format (JSON data only):

    {
      "backbone": "resunet",        # or "attention_unet"
      "depth": 2,                   # stride-2 downsamplings (depth + 1 U-net levels)
      "width": 32,                  # level-0 width; level l has width * (l + 1) channels
      "blocks_per_level": 2,        # DCR blocks per level, encoder and decoder
      "num_subnets": 1,             # parallel U-net bodies
      "layout": "paper",            # SkipInit U-net: "paper" (Sec. 3.2) or "compact"
      "activation": "relu",         # or "prelu"; both absent in older genotypes: compact, relu
      "layers": {                   # searchable slot -> [kernel size, filters]
        "sub0.enc0.dcr0.sk0": [5, 19],
        "sub0.enc0.dcr0.sk1": [3, 4, [0, 2, 5, 7]],   # filterwise (version 2): kept indices
        ...
      }
    }

Slot names are `sub<i>.<enc|dec><level>.dcr<j>.sk<0|1>`: the two superkernels of
DCR block j at that level of subnetwork i; the structure fixes which slots
exist. Primitives are `conv_<k>x<k>`, one per candidate kernel size, and every
layer's kernel size is one of them. Version 1 (no filter indices) still loads:
a slot without indices keeps the first f filters (`derived.py`).
"""

from __future__ import annotations

import re
from typing import Any

from torch import nn

from searchspaces.genotype import Genotype, require_keys
from searchspaces.registry import SearchSpace, Supernet, register_space
from searchspaces.superkernel.blocks import ACTIVATIONS
from searchspaces.superkernel.derived import (
    GENOTYPE_VERSION,
    SPACE_NAME,
    build_derived_network,
)
from searchspaces.superkernel.distributions import Choice
from searchspaces.superkernel.inherit import inherit_weights
from searchspaces.superkernel.network import BACKBONES, LAYOUTS, Structure, slot_widths
from searchspaces.superkernel.options import SuperkernelOptions
from searchspaces.superkernel.supernet import FixedSupernet, SuperkernelSupernet

STRUCTURE_KEYS = ("backbone", "depth", "width", "blocks_per_level", "num_subnets")
ARCH_KEYS = (*STRUCTURE_KEYS, "layers")
# structure keys a genotype may leave out (written before they existed: compact, relu)
OPTIONAL_ARCH_KEYS = {"layout": LAYOUTS, "activation": ACTIVATIONS}
_PRIMITIVE = re.compile(r"conv_(\d+)x\1")


@register_space
class SuperkernelSpace(SearchSpace):
    """Superkernel NAS: kernel sizes and filter counts of DCR blocks in a U-net."""

    name = SPACE_NAME
    options_model = SuperkernelOptions
    default_strategy = "joint"  # single-level: weights and logits in one step
    genotype_version = GENOTYPE_VERSION
    can_inherit = True  # single-shot: the distilled network keeps the supernet's weights

    def check_data(self, options: SuperkernelOptions, patch_size: int) -> None:  # type: ignore[override]
        multiple = 2**options.depth
        if patch_size % multiple:
            raise ValueError(f"options.depth: {options.depth} downsamplings need patches that "
                             f"are multiples of {multiple}, got {patch_size}")

    def build_supernet(self, options: dict[str, Any], in_channels: int) -> Supernet:
        parsed = self.parse_options(options)
        if parsed.superkernel == "none":
            return FixedSupernet(parsed, in_channels)
        return SuperkernelSupernet(parsed, in_channels)

    def build_derived(
        self, genotype: Genotype, options: dict[str, Any], in_channels: int
    ) -> nn.Module:
        if genotype.space != SPACE_NAME:
            raise ValueError(f"space: expected {SPACE_NAME!r}, got {genotype.space!r}")
        self.validate_arch(genotype)
        scale = self.parse_options(options).skipinit_scale
        return build_derived_network(genotype, in_channels, scale)

    def validate_arch(self, genotype: Genotype) -> None:
        validate_arch(genotype)

    def inherit(self, supernet: Supernet, genotype: Genotype, derived: nn.Module) -> None:
        inherit_weights(supernet, genotype, derived)

    def tiny_options(self) -> dict[str, Any]:
        """A depth-1 SkipInit U-net, one DCR block per level: 6 superkernel slots. The
        SkipInit scalar starts at 0.5 so that every weight gets a gradient on the first
        step (at the paper's 0 the residual branches are exactly cut off at init)."""
        return {"depth": 1, "width": 4, "blocks_per_level": 1, "skipinit_scale": 0.5}

    def set_one_hot(self, supernet: SuperkernelSupernet) -> Genotype:  # type: ignore[override]
        """Slot i takes kernel size i mod n_k and filter candidate (i // n_k) mod n_f; a
        filterwise slot keeps that many filters counted from the last one."""
        choices = {}
        for index, slot in enumerate(supernet.slots()):
            counts = slot.distribution.filter_counts
            num_kernels = len(slot.kernel_sizes)
            filters = counts[(index // num_kernels) % len(counts)]
            kept = None if slot.distribution.prefix_patterns else \
                tuple(range(slot.out_channels - filters, slot.out_channels))
            choices[slot.slot_name] = Choice(index % num_kernels, filters, kept)
        return supernet.load_choices(choices)


# --- genotype validation ------------------------------------------------------------------
def validate_arch(genotype: Genotype) -> None:
    """Raise ValueError naming the offending field if `genotype` is not a superkernel one."""
    kernel_sizes = _primitive_kernel_sizes(genotype.primitives)
    arch = require_keys(_without_optional(genotype.arch), ARCH_KEYS, "arch")
    if arch["backbone"] not in BACKBONES:
        raise ValueError(f"arch.backbone: unknown {arch['backbone']!r} "
                         f"(known: {', '.join(BACKBONES)})")
    for key in STRUCTURE_KEYS[1:]:
        _require_int(arch[key], f"arch.{key}", minimum=1)
    _validate_layers(arch["layers"], slot_widths(Structure.from_mapping(arch)), kernel_sizes,
                     genotype.version)


def _without_optional(arch: Any) -> Any:
    """`arch` without its optional structure keys, whose values are checked here."""
    if not isinstance(arch, dict):
        return arch
    for key, known in OPTIONAL_ARCH_KEYS.items():
        if key in arch and arch[key] not in known:
            raise ValueError(f"arch.{key}: unknown {arch[key]!r} (known: {', '.join(known)})")
    return {key: value for key, value in arch.items() if key not in OPTIONAL_ARCH_KEYS}


def _primitive_kernel_sizes(primitives: tuple[str, ...]) -> set[int]:
    if not primitives:
        raise ValueError("primitives: expected at least one conv_<k>x<k>")
    sizes = set()
    for name in primitives:
        match = _PRIMITIVE.fullmatch(name)
        if match is None or int(match.group(1)) % 2 == 0:
            raise ValueError(f"primitives: {name!r} is not conv_<k>x<k> with an odd k")
        sizes.add(int(match.group(1)))
    return sizes


def _validate_layers(layers: Any, expected: dict[str, int], kernel_sizes: set[int],
                     version: int) -> None:
    if not isinstance(layers, dict):
        raise ValueError("arch.layers: expected an object of slot -> [kernel size, filters]")
    missing = [name for name in expected if name not in layers]
    if missing:
        raise ValueError(f"arch.layers.{missing[0]}: missing")
    extra = sorted(set(layers) - set(expected))
    if extra:
        raise ValueError(f"arch.layers.{extra[0]}: no such slot in this backbone")
    for name, value in layers.items():
        field = f"arch.layers.{name}"
        lengths = (2, 3) if version >= 2 else (2,)  # version 2: kept filter indices
        if not isinstance(value, list) or len(value) not in lengths:
            indices = ", kept filter indices" if version >= 2 else ""
            raise ValueError(f"{field}: expected [kernel size, filters{indices}]")
        kernel_size = _require_int(value[0], f"{field} kernel size", minimum=1)
        if kernel_size not in kernel_sizes:
            raise ValueError(f"{field}: kernel size {kernel_size} is not among the primitives")
        filters = _require_int(value[1], f"{field} filters", minimum=1)
        if filters > expected[name]:  # growth rates are fractions in (0, 1] of the width
            raise ValueError(f"{field}: {filters} filters exceed the level width "
                             f"{expected[name]} of this slot")
        if len(value) == 3:
            _validate_indices(value[2], filters, expected[name], field)


def _validate_indices(indices: Any, filters: int, width: int, field: str) -> None:
    """Kept filters: `filters` ascending indices into the slot's maximal kernel."""
    if not isinstance(indices, list) or len(indices) != filters:
        raise ValueError(f"{field}: expected a list of the {filters} kept filter indices")
    for index in indices:
        _require_int(index, f"{field} filter index", minimum=0)
        if index >= width:
            raise ValueError(f"{field}: filter index {index} is beyond the level width {width}")
    if any(a >= b for a, b in zip(indices, indices[1:])):
        raise ValueError(f"{field}: filter indices must be unique and ascending")


def _require_int(value: Any, field: str, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ValueError(f"{field}: expected an integer >= {minimum}, got {value!r}")
    return value

