"""The searchable U-net denoiser D_t of MoD-NAS (Sec. 3.1-3.2, Fig. 1, Eqs. 7-11).

Three searched dimensions, relaxed and learned together by gradient descent:

- operations (Eqs. 7-8): a layer outputs the softmax(alpha)-weighted sum of its
  candidate ops; after search the argmax op is kept (Eq. 9);
- width (Eq. 10): every output channel c of every op k (skip excepted: it has
  no channels of its own) has a non-negative gate g_kc = softplus(a_kc), the
  logits initialised so that every gate starts at exactly 1 (the supernet
  starts as the plain mixture). Softplus (ours; the paper's gate function is
  not in the text) keeps gates positive without the sigmoid's ceiling, like
  the scaling factors of pruning by slimming. The stem conv from the image has
  gates too (no op choice). After search the chosen op keeps
  its top-k channels, k the smallest count whose gates reach the fraction
  rho of the total, rounded up to a multiple of m and capped at the width
  (`stem: fixed`, the paper's two convs, has no gates: its width is the
  `stem_channels` option, zero-padded to the width inside the supernet);
- depth (Eq. 11): a densely connected block; the input of normal layer j is
  sum_{i<j} softmax(gamma_j)_i out_i over the block input (i = 0) and the
  earlier layers (layer 1 has one path and no gamma); after search each layer
  keeps its most probable path. The block output is layer 3's output, so the
  kept paths decide which layers are alive: the depth is 1 to 3. The
  ablation baseline (`depth_search: skip_op`) chains the layers and adds a
  `skip` op to the normal set instead.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

import torch
import torch.nn.functional as F
from torch import nn

from searchspaces.modnas.operations import OPS
from searchspaces.modnas.skeleton import (
    JOIN_KERNELS,
    AddJoin,
    ConcatJoin,
    UNetSkeleton,
    fixed_stem,
    head,
    stem,
)

if TYPE_CHECKING:
    from searchspaces.modnas.options import ModNASOptions

NUM_LAYERS = 3  # normal layers per block (MoD-NAS Sec. 3.1)
GATE_INIT = math.log(math.e - 1)  # softplus(GATE_INIT) == 1


def kept_channel_indices(gates: torch.Tensor, rho: float, multiple: int) -> list[int]:
    """Channels kept by the width rule (Eq. 10): the top-k gates whose sum reaches
    rho of the total, k rounded up to a multiple of `multiple`, at most all channels."""
    values = gates.detach().double().flatten()  # (C,)
    order = torch.argsort(values, descending=True, stable=True)
    cumulative = torch.cumsum(values[order], 0)
    reached = (cumulative >= rho * cumulative[-1]).nonzero()
    count = int(reached[0]) + 1 if len(reached) else len(values)
    count = min(len(values), math.ceil(count / multiple) * multiple)
    return sorted(order[:count].tolist())


class MixedLayer(nn.Module):
    """sum_k softmax(alpha)_k * gate_k * op_k(x) over one candidate set, at full width.
    `split` (down layers with concatenating joins): every op returns (skip, next level)
    and the layer returns both mixtures."""

    def __init__(self, primitives: tuple[str, ...], width: int, split: bool = False) -> None:
        super().__init__()
        self.primitives, self.split = primitives, split
        self.ops = nn.ModuleList((OPS[name].split if split else OPS[name].build)(width, width)
                                 for name in primitives)
        self.gated = [OPS[name].gated for name in primitives]
        self.alphas = nn.Parameter(torch.zeros(len(primitives)))
        self.gate_logits = nn.Parameter(torch.full((sum(self.gated), width), GATE_INIT))

    def arch_parameters(self) -> list[nn.Parameter]:
        return [self.alphas, self.gate_logits]

    def gates(self) -> torch.Tensor:
        return F.softplus(self.gate_logits)  # (gated ops, W)

    def gate_row(self, op_index: int) -> int:
        return sum(self.gated[:op_index])

    def forward(self, x: torch.Tensor):
        weights, gates = F.softmax(self.alphas, dim=0), self.gates()
        if self.split:  # gates commute with the resampling (linear, or max with gates >= 0)
            return tuple(self.mix([op(x)[part] for op in self.ops], weights, gates)
                         for part in (0, 1))
        return self.mix([op(x) for op in self.ops], weights, gates)

    def mix(self, outputs: list[torch.Tensor], weights: torch.Tensor,
            gates: torch.Tensor) -> torch.Tensor:
        out = 0.0
        for index, y in enumerate(outputs):  # y: (B, width, H', W')
            if self.gated[index]:
                y = y * gates[self.gate_row(index)].view(1, -1, 1, 1)
            out = out + weights[index] * y
        return out

    def derive(self, rho: float, multiple: int) -> dict[str, Any]:
        index = int(torch.argmax(self.alphas))
        channels = None
        if self.gated[index]:
            gates = self.gates()[self.gate_row(index)]
            channels = len(kept_channel_indices(gates, rho, multiple))
        return {"op": self.primitives[index], "channels": channels}

    @torch.no_grad()
    def load(self, op: str, channels: int | None, logit: float) -> None:
        """Make `op` the argmax and its first `channels` gates dominant (+-logit)."""
        index = self.primitives.index(op)
        self.alphas.zero_()
        self.alphas[index] = logit
        if channels is not None:
            row = self.gate_logits[self.gate_row(index)]
            row.fill_(-logit)
            row[:channels] = logit


class GatedStem(nn.Module):
    """The 3x3 conv from the image (no ReLU in front) with a gate per output channel:
    its width is searched like every other layer's (the paper's first conv keeps 48)."""

    def __init__(self, in_channels: int, width: int) -> None:
        super().__init__()
        self.conv = stem(in_channels, width)
        self.gate_logits = nn.Parameter(torch.full((width,), GATE_INIT))

    def gates(self) -> torch.Tensor:
        return F.softplus(self.gate_logits)  # (width,)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(x) * self.gates().view(1, -1, 1, 1)  # (B, width, H, W)

    def derive(self, rho: float, multiple: int) -> dict[str, Any]:
        return {"channels": len(kept_channel_indices(self.gates(), rho, multiple))}

    @torch.no_grad()
    def load(self, channels: int, logit: float) -> None:
        self.gate_logits.fill_(-logit)
        self.gate_logits[:channels] = logit


class FixedStem(nn.Module):
    """The paper's two fixed convs (Tables 7/8) at `channels`, zero-padded to the width
    so that every dense path of the supernet has the full width; nothing is searched."""

    def __init__(self, in_channels: int, channels: int, width: int) -> None:
        super().__init__()
        self.convs = fixed_stem(in_channels, channels)
        self.channels, self.padding = channels, width - channels

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.pad(self.convs(x), (0, 0, 0, 0, 0, self.padding))  # (B, width, H, W)

    def derive(self, rho: float, multiple: int) -> dict[str, Any]:
        return {"channels": self.channels}

    def load(self, channels: int, logit: float) -> None:
        if channels != self.channels:
            raise ValueError(f"stem.channels: the fixed stem has {self.channels}, got {channels}")


class SearchBlock(nn.Module):
    """Three normal mixed layers, densely connected (gamma) or chained (skip_op)."""

    def __init__(self, primitives: tuple[str, ...], width: int, dense: bool) -> None:
        super().__init__()
        self.layers = nn.ModuleList(MixedLayer(primitives, width) for _ in range(NUM_LAYERS))
        # gammas[j - 2]: logits over the j paths into layer j (j = 2, 3)
        paths = range(2, NUM_LAYERS + 1) if dense else []
        self.gammas = nn.ParameterList(nn.Parameter(torch.zeros(j)) for j in paths)

    def path_weights(self, layer: int) -> torch.Tensor:
        return F.softmax(self.gammas[layer - 2], dim=0)  # (layer,)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        outputs = [x]  # outputs[0] = block input, outputs[j] = layer j
        for j, layer in enumerate(self.layers, start=1):
            if j == 1 or not self.gammas:
                inputs = outputs[-1]
            else:  # Eq. 11
                weights = self.path_weights(j)
                inputs = sum(w * out for w, out in zip(weights, outputs))
            outputs.append(layer(inputs))
        return outputs[-1]

    def input_of(self, layer: int) -> int:
        """The most probable path into `layer`; ties go to the latest output (so
        untouched gammas keep the full chain)."""
        if layer == 1 or not self.gammas:
            return layer - 1
        return layer - 1 - int(torch.argmax(self.gammas[layer - 2].flip(0)))

    def derive(self, rho: float, multiple: int) -> list[dict[str, Any]]:
        return [
            {**layer.derive(rho, multiple), "input": self.input_of(j)}
            for j, layer in enumerate(self.layers, start=1)
        ]

    @torch.no_grad()
    def load(self, layers: list[dict[str, Any]], logit: float) -> None:
        for j, (layer, spec) in enumerate(zip(self.layers, layers), start=1):
            layer.load(spec["op"], spec["channels"], logit)
            if j > 1 and self.gammas:
                self.gammas[j - 2].zero_()
                self.gammas[j - 2][spec["input"]] = logit


class SearchUNet(UNetSkeleton):
    """One searchable denoiser: L-1 encoding and L decoding blocks at constant width."""

    def __init__(self, options: ModNASOptions, in_channels: int) -> None:
        width, levels, dense = options.width, options.levels, options.depth_search == "dense"
        normal, split = options.normal_primitives(), options.skip_join in JOIN_KERNELS
        stem_module = (FixedStem(in_channels, options.fixed_stem_channels(), width)
                       if options.stem == "fixed" else GatedStem(in_channels, width))
        joins = [ConcatJoin(width, width, JOIN_KERNELS[options.skip_join]) if split
                 else AddJoin() for _ in range(levels - 1)]
        super().__init__(
            levels, stem_module,
            encoders=[SearchBlock(normal, width, dense) for _ in range(levels - 1)],
            downs=[MixedLayer(options.down_primitives(), width, split)
                   for _ in range(levels - 1)],
            decoders=[SearchBlock(normal, width, dense) for _ in range(levels)],
            ups=[MixedLayer(options.up_primitives(), width) for _ in range(levels - 1)],
            head_conv=head(width, in_channels), joins=joins, split_downs=split,
        )
        self.rho, self.multiple = options.rho, options.channel_multiple

    def derive(self) -> dict[str, Any]:
        """This denoiser's part of the genotype (format in `space.py`)."""
        rho, multiple = self.rho, self.multiple
        encoder = [{"layers": block.derive(rho, multiple), "down": down.derive(rho, multiple)}
                   for block, down in zip(self.encoders, self.downs)]
        decoder = [{"layers": block.derive(rho, multiple)} for block in self.decoders]
        for level, up in enumerate(self.ups, start=1):
            decoder[level]["up"] = up.derive(rho, multiple)
        return {"stem": self.stem.derive(rho, multiple), "encoder": encoder, "decoder": decoder}

    @torch.no_grad()
    def load(self, arch: dict[str, Any], logit: float) -> None:
        """Set this denoiser's architecture parameters so that `derive()` returns `arch`."""
        self.stem.load(arch["stem"]["channels"], logit)
        for block, down, spec in zip(self.encoders, self.downs, arch["encoder"]):
            block.load(spec["layers"], logit)
            down.load(spec["down"]["op"], spec["down"]["channels"], logit)
        for level, (block, spec) in enumerate(zip(self.decoders, arch["decoder"])):
            block.load(spec["layers"], logit)
            if level > 0:
                self.ups[level - 1].load(spec["up"]["op"], spec["up"]["channels"], logit)
