"""MoD-NAS as pictures: operation weights (softmax alpha) of every normal, down
and up layer, dense depth paths (softmax gamma) and width gates as tables over all
stages; a genotype as one U-net per stage with each layer's op, kept channels and input
path, and T in the title (Fig. 1)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import torch
import torch.nn.functional as F

from searchspaces.genotype import Genotype
from searchspaces.modnas.plan import alive_layers
from searchspaces.modnas.unet import NUM_LAYERS, MixedLayer
from searchspaces.names import MODNAS as SPACE_NAME
from searchspaces.views import Diagram, SpaceViews, WeightTable, register_views, table, unet_panel

if TYPE_CHECKING:
    from searchspaces.modnas.supernet import ModNASSupernet
    from searchspaces.modnas.unet import SearchUNet

PATH_NAMES = ["in", *(f"L{j}" for j in range(1, NUM_LAYERS))]  # inputs of a dense layer


def named_layers(unet: SearchUNet, stage: int) -> dict[str, list[tuple[str, Any]]]:
    """Row name -> module of every searched part of one denoiser, by role."""
    roles: dict[str, list[tuple[str, Any]]] = {"normal": [], "down": [], "up": [], "depth": []}
    blocks = [*(("enc", lv, b) for lv, b in enumerate(unet.encoders)),
              *(("dec", lv, b) for lv, b in enumerate(unet.decoders))]
    for part, level, block in blocks:
        prefix = f"s{stage}.{part}{level}"
        roles["normal"] += [(f"{prefix}.L{j}", layer) for j, layer in enumerate(block.layers, 1)]
        roles["depth"] += [(f"{prefix}.L{j}", g) for j, g in enumerate(block.gammas, 2)]
    roles["down"] = [(f"s{stage}.down{lv}->{lv + 1}", d) for lv, d in enumerate(unet.downs)]
    roles["up"] = [(f"s{stage}.up{lv + 1}->{lv}", u) for lv, u in enumerate(unet.ups)]
    return roles


def chosen_gates(layer: MixedLayer) -> torch.Tensor:
    """The gates of the op the layer would keep now, largest first (zeros for skip)."""
    index = int(torch.argmax(layer.alphas))
    if not layer.gated[index]:
        return torch.zeros(layer.gate_logits.shape[1])
    return layer.gates()[layer.gate_row(index)].detach().sort(descending=True).values


@register_views(SPACE_NAME)
class ModNASViews(SpaceViews):
    def weight_tables(self, supernet: ModNASSupernet) -> list[WeightTable]:  # type: ignore[override]
        options = supernet.options
        roles: dict[str, list[tuple[str, Any]]] = {}
        gates: list[tuple[str, torch.Tensor]] = []
        for stage, unet in enumerate(supernet.searched()):  # the first alone when shared
            named = named_layers(unet, stage)
            for role, items in named.items():
                roles.setdefault(role, []).extend(items)
            if hasattr(unet.stem, "gate_logits"):  # a fixed stem has no gates
                stem = F.softplus(unet.stem.gate_logits).detach().sort(descending=True).values
                gates.append((f"s{stage}.stem", stem))
            gates += [(name, chosen_gates(layer)) for role in ("normal", "down", "up")
                      for name, layer in named[role]]
        ops = {"normal": options.normal_primitives(), "down": options.down_primitives(),
               "up": options.up_primitives()}
        tables = [softmax_table(f"{role} ops (alpha)", roles[role], list(ops[role]))
                  for role in ("normal", "down", "up") if roles[role]]
        if roles["depth"]:
            tables.append(softmax_table("depth paths (gamma)", roles["depth"], PATH_NAMES))
        columns = [str(c) for c in range(1, options.width + 1)]
        tables.append(table("width gates of the kept op, largest first", [n for n, _ in gates],
                            columns, [g for _, g in gates], unit="gate"))
        return tables

    def diagram(self, genotype: Genotype) -> Diagram:
        arch = genotype.arch
        stages = arch["stages"]
        if not arch["unfolding"]:
            names = ["plain U-net denoiser y -> D(y)"]
        elif arch.get("share_architecture", False):
            names = [f"D, the architecture of all {stages} stages (own weights each)"]
        else:
            names = [f"stage {t + 1} of {stages}: D_{t + 1}" for t in range(stages)]
        panels = tuple(denoiser_panel(name, denoiser)
                       for name, denoiser in zip(names, arch["denoisers"]))
        frame = "model-guided unfolding" if arch["unfolding"] else "no unfolding"
        title = (f"MoD-NAS {genotype.arch_hash()}: T = {arch['stages']} ({frame}), "
                 f"{arch['levels']} levels, width {arch['width']} (m = "
                 f"{arch['channel_multiple']}), depth {arch['depth_search']}")
        if "params_derived" in genotype.provenance:
            title += f", {genotype.provenance['params_derived']:,} params"
        return Diagram(title, panels)


def softmax_table(name: str, named: list[tuple[str, Any]], columns: list[str]) -> WeightTable:
    logits = [module.alphas if isinstance(module, MixedLayer) else module for _, module in named]
    return table(name, [n for n, _ in named], columns, [F.softmax(x, dim=0) for x in logits])


def layer_text(layer: dict[str, Any]) -> str:
    return layer["op"] if layer["channels"] is None else f"{layer['op']} {layer['channels']}ch"


def block_text(name: str, block: dict[str, Any]) -> str:
    """One line per normal layer: op, kept channels, input path; dead layers marked."""
    alive = alive_layers(block["layers"])
    lines = [name]
    for j, layer in enumerate(block["layers"], start=1):
        source = PATH_NAMES[layer["input"]] if layer["input"] < len(PATH_NAMES) else "?"
        mark = "" if j in alive else "  (unused)"
        lines.append(f"L{j} {layer_text(layer)} <- {source}{mark}")
    return "\n".join(lines)


def denoiser_panel(title: str, denoiser: dict[str, Any]) -> Any:
    encoder, decoder = denoiser["encoder"], denoiser["decoder"]
    levels = len(decoder)
    return unet_panel(
        title,
        stem=f"stem 3x3\n{denoiser['stem']['channels']} ch",
        encoders=[block_text(f"encoder {lv}", b) for lv, b in enumerate(encoder)],
        bottom=block_text(f"decoder {levels - 1} (bottom)", decoder[-1]),
        decoders=[block_text(f"decoder {lv}", b) for lv, b in enumerate(decoder[:-1])],
        downs=[layer_text(block["down"]) for block in encoder],
        ups=[layer_text(decoder[lv]["up"]) for lv in range(1, levels)],
        head="head 3x3\nx + head(...)",
    )
