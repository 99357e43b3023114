"""Derived MoD-NAS (T = 1) inference latency against DnCNN-17 on the running CPU (MoD-NAS
Table 2: T = 1 runs Urban100 in 11.45 s against DnCNN's 21.45 s, a ratio of 0.53).

The MoD-NAS network is a representative derived genotype at the paper's settings
(width 64, 4 levels, rho 0.9, m 8, T = 1), not the output of a search: every
normal layer conv 3x3, down-sampling by a stride-2 conv 3x3, up-sampling by a
transposed conv 3x3, full depth (every layer reads the previous one). Its
channel counts are what the width rule (Eq. 10) keeps from gates drawn i.i.d.
from Exp(1) (seeded): a heavy-tailed gate distribution with its peak at the
origin, the shape the paper reports after search (Fig. 2(a)). For Exp(1) gates
the top fraction p of the channels holds p (1 - ln p) of the mass: 90% at p =
0.59, so rho 0.9 keeps about 38 of 64 channels, rounded up to 40 (48 for some
layers): the paper's derived nets keep 24-48 (Table 7),
and the genotype's 0.42M parameters match its T = 1 count (418k). A search on
this CPU would not get there: after a short search the gates are still nearly
uniform, and rho 0.9 of uniform gates keeps the full width.

Both networks run in eval mode under `torch.inference_mode()` on one
(1, 1, S, S) image, interleaved in one process (alternating which goes first),
after one warm-up round; the value is the ratio of the median latencies
(MoD-NAS / DnCNN), which equals the ratio per megapixel.
"""

from __future__ import annotations

import statistics
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager

import torch
from torch import nn

from searchspaces.baselines import DnCNN
from searchspaces.genotype import Genotype
from searchspaces.modnas.unet import NUM_LAYERS, kept_channel_indices
from searchspaces.registry import get_space
from trainables.cost import count_parameters, flops_per_megapixel

SIZES = {  # image side, timed repeats, intra-op threads (None: torch's default)
    "tiny": {"side": 32, "repeats": 2, "threads": 1},  # a test that the bench runs
    "quick": {"side": 128, "repeats": 5, "threads": None},
    "full": {"side": 256, "repeats": 9, "threads": None},
}
OPTIONS = {"stages": 1, "levels": 4, "width": 64, "rho": 0.9, "channel_multiple": 8}
OPS = {"normal": "conv_3x3", "down": "down_conv_3x3", "up": "up_deconv_3x3"}


def kept_count(generator: torch.Generator) -> int:
    """Channels the width rule keeps from one layer's Exp(1) gates."""
    gates = torch.empty(OPTIONS["width"]).exponential_(generator=generator)  # (W,)
    return len(kept_channel_indices(gates, OPTIONS["rho"], OPTIONS["channel_multiple"]))


def representative_arch(seed: int = 0) -> dict:
    generator = torch.Generator().manual_seed(seed)

    def block() -> dict:
        return {"layers": [{"op": OPS["normal"], "channels": kept_count(generator),
                            "input": j - 1} for j in range(1, NUM_LAYERS + 1)]}

    levels = OPTIONS["levels"]
    stem = {"channels": kept_count(generator)}
    encoder = [{**block(), "down": {"op": OPS["down"], "channels": kept_count(generator)}}
               for _ in range(levels - 1)]
    decoder = [block()] + [{**block(), "up": {"op": OPS["up"], "channels": kept_count(generator)}}
                           for _ in range(levels - 1)]
    return {"stages": 1, "unfolding": True, "levels": levels, "width": OPTIONS["width"],
            "channel_multiple": OPTIONS["channel_multiple"], "depth_search": "dense",
            "denoisers": [{"stem": stem, "encoder": encoder, "decoder": decoder}]}


def representative_genotype(seed: int = 0) -> Genotype:
    space = get_space("modnas")
    primitives = space.parse_options(OPTIONS).all_primitives()
    document = Genotype("modnas", primitives, representative_arch(seed)).to_dict()
    return Genotype.from_dict(document, source="representative modnas genotype")


@contextmanager
def intra_op_threads(count: int | None) -> Iterator[None]:
    before = torch.get_num_threads()
    torch.set_num_threads(count or before)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def interleaved_medians(models: dict[str, nn.Module], image: torch.Tensor,
                        repeats: int) -> dict[str, float]:
    """Median seconds per forward pass of each model, alternating the order per round."""
    times: dict[str, list[float]] = {name: [] for name in models}
    names = list(models)
    with torch.inference_mode():
        for round_index in range(repeats + 1):  # round 0 is the warm-up
            for name in names if round_index % 2 else reversed(names):
                began = time.perf_counter()
                models[name](image)
                if round_index:
                    times[name].append(time.perf_counter() - began)
    return {name: statistics.median(values) for name, values in times.items()}


def modnas_t1_vs_dncnn_latency(size: str = "quick") -> dict:
    """Median latency of derived MoD-NAS T = 1 over DnCNN-17 (target: at most 0.6)."""
    if size not in SIZES:
        raise ValueError(f"size: expected one of {', '.join(SIZES)}, got {size!r}")
    spec = SIZES[size]
    torch.manual_seed(0)
    genotype = representative_genotype()
    models = {"modnas": get_space("modnas").build_derived(genotype, OPTIONS, 1).eval(),
              "dncnn": DnCNN(in_channels=1, depth=17, channels=64).eval()}
    image = torch.rand(1, 1, spec["side"], spec["side"])  # (1, 1, S, S)
    with intra_op_threads(spec["threads"]):
        medians = interleaved_medians(models, image, spec["repeats"])
        threads = torch.get_num_threads()
        flops = {name: flops_per_megapixel(m, 1, spec["side"]) for name, m in models.items()}
    megapixels = spec["side"] ** 2 / 1e6
    channels = [layer["channels"] for block in genotype.arch["denoisers"][0]["encoder"]
                + genotype.arch["denoisers"][0]["decoder"] for layer in block["layers"]]
    return {
        "name": "modnas_t1_vs_dncnn_latency",
        "value": medians["modnas"] / medians["dncnn"],
        "unit": "ratio",
        "target": 0.6,
        "detail": {
            "size": size, **spec, "options": OPTIONS, "ops": OPS,
            "arch_hash": genotype.arch_hash(), "normal_layer_channels": channels,
            **{f"{name}_ms_per_mp": 1000 * t / megapixels for name, t in medians.items()},
            **{f"{name}_params": count_parameters(m) for name, m in models.items()},
            **{f"{name}_gflops_per_mp": value for name, value in flops.items()},
            "threads": threads,
        },
    }


if __name__ == "__main__":
    print(modnas_t1_vs_dncnn_latency(sys.argv[1] if len(sys.argv) > 1 else "quick"))
