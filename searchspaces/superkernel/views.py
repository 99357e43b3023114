"""Superkernel NAS as pictures: per slot the kernel-size and filter
probabilities of its structural distribution (joint: one table over (k, f) pairs;
factorized: kernel sizes and filter counts; filterwise: kernel sizes and the keep
probability of every filter); a genotype as one U-net per subnetwork with the chosen
kernel size and filter count of every superkernel slot (Sec. 3, Figs. 2-4)."""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F

from searchspaces.genotype import Genotype
from searchspaces.superkernel.derived import SPACE_NAME
from searchspaces.superkernel.distributions import (
    FactorizedDistribution,
    FilterwiseDistribution,
    JointDistribution,
)
from searchspaces.superkernel.network import Structure, slot_widths
from searchspaces.superkernel.supernet import SuperkernelSupernet
from searchspaces.views import Diagram, SpaceViews, WeightTable, register_views, table, unet_panel


def filter_options(count: int) -> list[str]:
    """Column names of filter-count candidates, fewest first (counts differ per level)."""
    return [f"f{i + 1}" for i in range(count)]


@register_views(SPACE_NAME)
class SuperkernelViews(SpaceViews):
    def weight_tables(self, supernet: Any) -> list[WeightTable]:
        if not isinstance(supernet, SuperkernelSupernet):
            return []  # the no-superkernel baseline searches nothing
        slots = supernet.slots()
        names = [slot.slot_name for slot in slots]
        dists = [slot.distribution for slot in slots]
        kernels = [f"{k}x{k}" for k in supernet.options.kernel_sizes]
        options = filter_options(max(len(d.filter_counts) for d in dists))
        first = dists[0]
        if isinstance(first, JointDistribution):
            pairs = [f"{k} {f}" for k in kernels for f in options]
            return [table("(kernel, filters) probabilities, f1 = fewest filters", names, pairs,
                          [joint_row(d, len(options)) for d in dists])]
        kernel_table = table("kernel size probabilities", names, kernels,
                             [F.softmax(d.kernel_logits, dim=-1) for d in dists])
        if isinstance(first, FactorizedDistribution):
            return [kernel_table, table("filter count probabilities, f1 = fewest", names, options,
                                        [F.softmax(d.filter_logits, dim=-1) for d in dists])]
        assert isinstance(first, FilterwiseDistribution)
        filters = [str(i) for i in range(1, max(d.max_filters for d in dists) + 1)]
        return [kernel_table, table("keep probability of each filter", names, filters,
                                    [torch.sigmoid(d.logits_per_filter()) for d in dists])]

    def diagram(self, genotype: Genotype) -> Diagram:
        arch = genotype.arch
        structure = Structure.from_mapping(arch)
        widths = slot_widths(structure)
        panels = tuple(subnet_panel(index, structure, arch["layers"], widths)
                       for index in range(structure.num_subnets))
        layout = f" ({structure.layout})" if structure.backbone == "resunet" else ""
        title = (f"Superkernel {genotype.arch_hash()}: {structure.backbone}{layout}, "
                 f"{structure.activation}, depth {structure.depth}, width {structure.width}, "
                 f"{structure.num_subnets} subnetwork(s); per slot kernel and filters / level "
                 "width")
        return Diagram(title, panels)


def joint_row(distribution: JointDistribution, num_options: int) -> torch.Tensor:
    """softmax over (k, f) pairs laid out as k-major rows of `num_options` filter columns."""
    probs = F.softmax(distribution.logits, dim=-1).view(distribution.num_kernels, -1)
    padded = torch.full((distribution.num_kernels, num_options), float("nan"),
                        device=probs.device)
    padded[:, : probs.shape[1]] = probs
    return padded.flatten()


def level_text(name: str, prefix: str, blocks: int, layers: dict[str, list[int]],
               widths: dict[str, int]) -> str:
    """The block of one level: per DCR block the (k, f) of its two superkernels."""
    lines = [name]
    for block in range(blocks):
        slots = [f"{prefix}.dcr{block}.sk{i}" for i in range(2)]
        choices = [f"{layers[s][0]}x{layers[s][0]} {layers[s][1]}/{widths[s]}" for s in slots]
        lines.append(f"dcr{block}: " + ", ".join(choices))
    return "\n".join(lines)


def subnet_panel(index: int, structure: Structure, layers: dict[str, list[int]],
                 widths: dict[str, int]) -> Any:
    depth, blocks = structure.depth, structure.blocks_per_level
    level_widths = structure.widths()

    def text(part: str, level: int, title: str) -> str:
        return level_text(f"{title} ({level_widths[level]} ch)", f"sub{index}.{part}{level}",
                          blocks, layers, widths)

    return unet_panel(
        f"subnetwork {index}",
        stem="image\n3x3 conv",
        encoders=[text("enc", lv, f"encoder {lv}") for lv in range(depth)],
        bottom=text("enc", depth, f"encoder {depth} (bottom)"),
        decoders=[text("dec", lv, f"decoder {lv}") for lv in range(depth)],
        downs=["stride-2 conv"] * depth,
        ups=["pixel shuffle"] * depth,
        head="output conv\n+ input",
    )
