"""Random search with weight sharing (`search.strategy: rsws`): the RSWS row of the HiNAS
journal's Table 1 (N = 30 sampled models), after Li and Talwalkar (UAI 2020, Sec. 3).

1. Train the supernet's weights with one uniformly drawn architecture per step (weight
   sharing): `Supernet.sample_architecture`, then `fix_architecture` for that step's
   forward and backward, so only the drawn architecture's weights get gradients. The
   weights train on Train-W and Train-A together (nothing else uses Train-A: there are no
   architecture steps); the weight optimiser and its schedule are the search's.
2. Evaluate `search.rsws.samples` (N) architectures, drawn before training from their own
   seed, on Validation-V with the shared weights; the best by `search.select_by` is the
   search's genotype. Their scores are logged as `rsws/candidate_<i>/score` and `/psnr`
   with `rsws/best_candidate`, at the last epoch (or the one patience stopped).
During training, the validations every epoch (or `search.eval_every` steps) score the first
of the N candidates (the probe): a curve of the shared weights that patience may act on.
The draws of step s of epoch e come from a generator seeded by (seed, e): a resumed search
draws the same architectures.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import torch

from searchspaces.genotype import Genotype
from trainables.data import NamedImage
from trainables.loops.devices import Runtime
from trainables.loops.losses import DenoiseLoss
from trainables.loops.parts import finite_or_raise, validate

CANDIDATE_SEED = 104_729  # added to the study seed: candidates apart from training draws


def candidates(supernet, seed: int, samples: int) -> list[Genotype]:
    """The N architectures scored at the end (the first is the probe)."""
    generator = torch.Generator().manual_seed(seed + CANDIDATE_SEED)
    return [supernet.sample_architecture(generator) for _ in range(samples)]


@contextmanager
def fixed(supernet, genotype: Genotype) -> Iterator[None]:
    supernet.fix_architecture(genotype)
    try:
        yield
    finally:
        supernet.release_architecture()


def train_epoch(parts, epoch: int, study, runtime: Runtime, batches, probe: Genotype,
                after_step: Callable[[int], bool], loss_step: Callable) -> float:
    """One epoch of sampled steps (search_loop.loss_step each); `after_step` (validation,
    patience) sees the probe fixed. Returns the mean training loss."""
    supernet, search = parts.supernet, study.search
    loss_fn = DenoiseLoss(**search.loss.model_dump())
    weights = supernet.weight_parameters()
    generator = torch.Generator().manual_seed(study.seed * 1_000_003 + epoch)
    total = torch.zeros((), device=runtime.device)
    steps = 0
    for steps, batch in enumerate(batches(epoch), start=1):
        supernet.on_step(epoch * search.steps_per_epoch + steps - 1)
        with fixed(supernet, supernet.sample_architecture(generator)):
            step_loss = loss_step(supernet, loss_fn, batch, [parts.weight_optimizer], runtime,
                                  search.grad_clip_norm, weights)
        total += step_loss
        parts.guard.update(step_loss, steps - 1)
        parts.weight_scheduler.step()
        with fixed(supernet, probe):
            stop = after_step(steps)
        if stop:
            break
    return finite_or_raise(total.item() / max(steps, 1), "train/loss")


def choose(supernet, pool: list[Genotype], best, epoch: int, images: list[NamedImage],
           keys: list[str], runtime: Runtime, select_by: str) -> dict[str, float]:
    """Score every candidate on V with the shared weights; the best becomes `best`'s
    genotype and score. Returns the per-candidate metrics."""
    results = []
    for genotype in pool:
        with fixed(supernet, genotype):
            results.append(validate(supernet, images, keys, runtime))
    supernet.train()
    winner = max(range(len(pool)), key=lambda index: results[index][f"val/{select_by}"])
    top = results[winner]
    provenance = {**pool[winner].provenance, "epoch": epoch, "rsws_candidate": winner,
                  "rsws_samples": len(pool), "val_score": top["val/score"],
                  "val_psnr": top["val/psnr"]}
    best.genotype = dataclasses.replace(pool[winner], provenance=provenance).to_dict()
    best.score, best.epoch = top[f"val/{select_by}"], epoch
    metrics = {"rsws/best_candidate": float(winner), "rsws/best_score": top["val/score"],
               "rsws/best_psnr": top["val/psnr"]}
    for index, result in enumerate(results):
        metrics[f"rsws/candidate_{index:03d}/score"] = result["val/score"]
        metrics[f"rsws/candidate_{index:03d}/psnr"] = result["val/psnr"]
    return metrics
