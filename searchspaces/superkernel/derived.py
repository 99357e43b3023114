"""The distilled superkernel network (Mozejko et al. 2020, Sec. 4.5.5,
"Distillation"): every searchable slot becomes a plain act(conv) of the chosen
kernel size and filter count, so the network is physically smaller than the
supernet. Built from the genotype alone; `inherit.py` loads the
supernet's trained weights into it (the paper's single-shot procedure).

Genotype versions: 1 stored `[kernel size, filters]` per slot; 2 (GENOTYPE_VERSION)
adds, for the filterwise types, the indices of the kept filters, `[k, f, [i, ...]]`,
so that their trained weights map exactly. A slot without indices keeps the first
f filters (a version-1 filterwise genotype included: its count survives, not which).
"""

from __future__ import annotations

from typing import Any

from torch import nn

from searchspaces.genotype import Genotype
from searchspaces.names import SUPERKERNEL as SPACE_NAME
from searchspaces.superkernel.blocks import ConvReLU
from searchspaces.superkernel.network import Structure, SuperkernelNetwork, slot_widths

GENOTYPE_VERSION = 2  # 2: kept filter indices of filterwise slots


def primitive_name(kernel_size: int) -> str:
    return f"conv_{kernel_size}x{kernel_size}"


def filter_candidates(growth_rates: tuple[float, ...], level_width: int) -> tuple[int, ...]:
    """Candidate filter counts of a slot: growth rate x level width, rounded, at least 1,
    duplicates removed (tiny widths can round two rates to the same count)."""
    return tuple(sorted({max(1, round(rate * level_width)) for rate in growth_rates}))


def make_genotype(structure: Structure, kernel_sizes: tuple[int, ...],
                  layers: dict[str, list[int]]) -> Genotype:
    """A superkernel genotype; `layers` maps slot name -> [kernel size, filters] or
    [kernel size, filters, kept filter indices]."""
    arch: dict[str, Any] = {**vars(structure), "layers": dict(layers)}
    primitives = tuple(primitive_name(k) for k in kernel_sizes)
    return Genotype(SPACE_NAME, primitives, arch, version=GENOTYPE_VERSION)


def kept_filters(entry: list[Any]) -> tuple[int, ...]:
    """The filters of the maximal kernel a layer entry keeps: its indices, else the first f."""
    return tuple(entry[2]) if len(entry) > 2 else tuple(range(entry[1]))


def fixed_genotype(options: Any) -> Genotype:
    """The no-superkernel baseline: every slot at `fixed_kernel_size` (default: the
    largest candidate) and `fixed_growth` x level width filters (default: the largest)."""
    kernel_size = options.fixed_kernel_size or max(options.kernel_sizes)
    growth = options.fixed_growth or max(options.growth_rates)
    structure = Structure.from_mapping(options)
    layers = {name: [kernel_size, filter_candidates((growth,), width)[0]]
              for name, width in slot_widths(structure).items()}
    return make_genotype(structure, (kernel_size,), layers)


def build_derived_network(genotype: Genotype, in_channels: int,
                          skipinit_scale: float = 0.0) -> nn.Module:
    """The plain network of `genotype` (validated by the space beforehand)."""
    layers = genotype.arch["layers"]
    structure = Structure.from_mapping(genotype.arch)

    def chosen_slot(name: str, slot_in_channels: int, level_width: int) -> tuple[nn.Module, int]:
        if name not in layers:
            raise ValueError(f"arch.layers.{name}: missing")
        kernel_size, filters = layers[name][:2]
        return ConvReLU(slot_in_channels, filters, kernel_size, structure.activation), filters

    return SuperkernelNetwork(structure, in_channels, chosen_slot, skipinit_scale)
