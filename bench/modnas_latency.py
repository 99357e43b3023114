"""Derived MoD-NAS (T = 1) inference latency against DnCNN-17 on the running CPU (MoD-NAS
Table 2: T = 1 runs Urban100 in 11.45 s against DnCNN's 21.45 s, a ratio of 0.53).

The MoD-NAS network is the paper's own searched denoiser: the genotype of
appendix Table 7 (MoD-NAS-B, `tests/searchspaces/data/modnas_table7.json`,
420,927 parameters against the paper's 418k), with the paper's candidates,
concatenating skip joins and fixed two-conv stem. The detail adds the latency
of T = 3 and T = 6 over T = 1 (the same denoiser in every stage: Table 7 lists
one), which the paper reports as about linear in T (Table 2: 18.12 s and
33.39 s against 11.45 s, ratios 1.58 and 2.92; parameters exactly T times).

All networks run in eval mode under `torch.inference_mode()` on one
(1, 1, S, S) image in channels_last, the layout both ask for on CPU
(`prefers_nhwc`, as the project trains and tests them), interleaved in one
process (alternating the order per round), after one warm-up round. The value
is the ratio of the fastest repeats (MoD-NAS T = 1 / DnCNN), which equals the
ratio per megapixel: on a loaded 2-core machine the network of more, smaller
convolutions loses more to descheduled threads, so the medians (in the
detail, with the load average) overstate it. The detail also gives the
ratio with one intra-op thread (`single_thread_ratio`, fastest repeats):
with two threads on two busy cores every convolution waits for a
descheduled peer (measured: the same forward 5-8x slower), with one it does not.
"""

from __future__ import annotations

import os
import statistics
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import torch
from torch import nn

from searchspaces.baselines import DnCNN
from searchspaces.genotype import Genotype
from searchspaces.registry import get_space
from trainables.loops import count_parameters, flops_per_megapixel

SIZES = {  # image side, timed repeats, intra-op threads (None: torch's default)
    "tiny": {"side": 32, "repeats": 2, "threads": 1},  # a test that the bench runs
    "quick": {"side": 128, "repeats": 5, "threads": None},
    "full": {"side": 256, "repeats": 9, "threads": None},
}
TABLE7 = Path(__file__).resolve().parents[1] / "tests/searchspaces/data/modnas_table7.json"
STAGES = (1, 3, 6)  # Table 2's T
PAPER_SECONDS = {1: 11.45, 3: 18.12, 6: 33.39}  # Urban100 at sigma 50, Table 2
PAPER_FLOPS_RATIO = 0.48 / 1.28  # Table 2: MoD-NAS T = 1 / DnCNN


def table7_genotype(stages: int = 1) -> Genotype:
    """The Table 7 denoiser (one architecture for every stage) unrolled to `stages` stages,
    as `retrain.stages` builds it."""
    return get_space("modnas").at_stages(Genotype.load(TABLE7), stages)


@contextmanager
def intra_op_threads(count: int | None) -> Iterator[None]:
    before = torch.get_num_threads()
    torch.set_num_threads(count or before)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def interleaved_times(models: dict[str, nn.Module], image: torch.Tensor,
                      repeats: int) -> dict[str, list[float]]:
    """Seconds per forward pass of each model, `repeats` each, alternating the order."""
    times: dict[str, list[float]] = {name: [] for name in models}
    names = list(models)
    with torch.inference_mode():
        for round_index in range(repeats + 1):  # round 0 is the warm-up
            for name in names if round_index % 2 else reversed(names):
                began = time.perf_counter()
                models[name](image)
                if round_index:
                    times[name].append(time.perf_counter() - began)
    return times


def modnas_t1_vs_dncnn_latency(size: str = "quick") -> dict:
    """Latency of derived MoD-NAS T = 1 over DnCNN-17, the fastest of the interleaved
    repeats of each (target: at most 0.6); the median ratio and T = 3, 6 in the detail."""
    if size not in SIZES:
        raise ValueError(f"size: expected one of {', '.join(SIZES)}, got {size!r}")
    spec = SIZES[size]
    torch.manual_seed(0)
    genotypes = {f"modnas_t{t}": table7_genotype(t) for t in STAGES}
    space = get_space("modnas")
    models: dict[str, nn.Module] = {name: space.build_derived(g, {}, 1).eval()
                                    for name, g in genotypes.items()}
    models["dncnn"] = DnCNN(in_channels=1, depth=17, channels=64).eval()
    flops = {name: flops_per_megapixel(models[name], 1, spec["side"])
             for name in ("modnas_t1", "dncnn")}
    models = {name: m.to(memory_format=torch.channels_last) for name, m in models.items()}
    image = torch.rand(1, 1, spec["side"], spec["side"]).to(
        memory_format=torch.channels_last)  # (1, 1, S, S)
    with intra_op_threads(spec["threads"]):
        times = interleaved_times(models, image, spec["repeats"])
        threads = torch.get_num_threads()
    fastest = {name: min(values) for name, values in times.items()}
    pair = {name: models[name] for name in ("modnas_t1", "dncnn")}
    with intra_op_threads(1):
        single = {name: min(values) for name, values in
                  interleaved_times(pair, image, spec["repeats"]).items()}
    medians = {name: statistics.median(values) for name, values in times.items()}
    megapixels = spec["side"] ** 2 / 1e6
    return {
        "name": "modnas_t1_vs_dncnn_latency",
        "value": fastest["modnas_t1"] / fastest["dncnn"],
        "unit": "ratio",
        "target": 0.6,
        "detail": {
            "size": size, **spec, "genotype": "MoD-NAS appendix Table 7",
            "arch_hash": genotypes["modnas_t1"].arch_hash(),
            **{f"{name}_ms_per_mp": 1000 * t / megapixels for name, t in fastest.items()},
            "median_ratio": medians["modnas_t1"] / medians["dncnn"],
            "single_thread_ratio": single["modnas_t1"] / single["dncnn"],
            **{f"{name}_params": count_parameters(m) for name, m in models.items()},
            **{f"{name}_gflops_per_mp": value for name, value in flops.items()},
            "flops_ratio": flops["modnas_t1"] / flops["dncnn"], "paper_flops_ratio":
                PAPER_FLOPS_RATIO,
            **{f"t{t}_over_t1": fastest[f"modnas_t{t}"] / fastest["modnas_t1"]
               for t in STAGES[1:]},
            **{f"paper_t{t}_over_t1": PAPER_SECONDS[t] / PAPER_SECONDS[1] for t in STAGES[1:]},
            "threads": threads,
            "load_average": os.getloadavg()[0],
        },
    }


if __name__ == "__main__":
    print(modnas_t1_vs_dncnn_latency(sys.argv[1] if len(sys.argv) > 1 else "quick"))
