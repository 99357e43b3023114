"""The supernet search loop, free of Ray and MLflow.

Bilevel first-order alternation (DARTS first order, HiNAS, MoD-NAS): each step
one architecture step on a Train-A batch and one weight step on a Train-W
batch, in the order the space declares (`SearchSpace.bilevel_order`:
architecture first as DARTS and HiNAS, weights first as MoD-NAS Algorithm 1);
architecture steps start after `warmup_epochs`, and the architecture's
learning-rate schedule spans the epochs after it. The joint single-level
strategy (Superkernel NAS) updates weights and architecture with one loss on
the same batch. Random search with weight sharing (`rsws`, trainables/loops/rsws.py)
trains the weights one drawn architecture per step and scores N drawn
architectures on V at the end. The supernet is validated on V at the end of
every epoch, or every `search.eval_every` steps (Superkernel NAS: every 1k steps); from
`validate_from_epoch` on, the genotype of the best evaluation (score SSIM +
PSNR/100, or PSNR) is kept, and the search stops after `patience` evaluations
without improvement (logged as search/stopped_early, search/stopped_at_step).
When the derived network inherits its weights (`retrain.from: inherit`), the
supernet's weights at the best evaluation are kept too (`state["best"]["weights"]`).
State is handed to the reporter each epoch so the caller can checkpoint it and
resume; it carries the curves and the architecture distributions of every epoch
so far (`state["history"]`, for the trial's plots).
"""

from __future__ import annotations

import dataclasses
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from itertools import repeat
from typing import Any

import torch

from searchspaces.genotype import Genotype
from searchspaces.registry import get_space
from searchspaces.views import views_for
from studyspec.steps import image_epoch_steps
from trainables.data import NamedImage, SearchData
from trainables.loops import rsws
from trainables.loops.devices import (
    Runtime,
    autocast,
    memory_format,
    peak_memory_mib,
    reset_peak_memory,
)
from trainables.loops.history import SearchHistory
from trainables.loops.losses import DenoiseLoss
from trainables.loops.monitor import Monitor
from trainables.loops.optim import build_optimizer, build_scheduler, parameter_names
from trainables.loops.parts import (
    DivergenceGuard,
    Reporter,
    StepClock,
    centre_crop,
    finite_or_raise,
    patch_batches,
    to_device,
    validate,
    validation_keys,
)


@dataclass
class SearchParts:
    """The supernet and what trains it (built once per trial, restored on resume)."""

    supernet: Any
    weight_optimizer: torch.optim.Optimizer
    arch_optimizer: torch.optim.Optimizer
    weight_scheduler: Any
    arch_scheduler: Any
    guard: DivergenceGuard  # fails the trial when train/loss diverges


@dataclass
class Best:
    score: float = float("-inf")
    epoch: int = -1
    genotype: dict | None = None
    stale: int = 0  # evaluations since the last improvement
    step: int = -1  # training steps done at the best evaluation
    weights: dict | None = None  # the supernet's state then (kept when the network inherits)


def in_channels(study) -> int:
    return 3 if study.data.color else 1


def build_search(study, runtime: Runtime) -> SearchParts:
    """Supernet, optimisers and schedulers for `study` (a validated Study)."""
    space = get_space(study.search_space.name)
    supernet = space.build_supernet(study.search_space.resolved_options(), in_channels(study))
    supernet = supernet.to(runtime.device, memory_format=memory_format(runtime, supernet))
    search = study.search
    total = search.epochs * search.steps_per_epoch
    # the architecture steps (and its schedule) only after warm-up: size it for those epochs
    arch_total = (search.epochs - search.warmup_epochs) * search.steps_per_epoch
    weight_spec = search.weight_optimizer.model_dump()
    arch_spec = search.arch_optimizer.model_dump()
    w_opt = build_optimizer(supernet.weight_parameters(), weight_spec, parameter_names(supernet))
    a_opt = build_optimizer(supernet.arch_parameters(), arch_spec)
    steps = search.steps_per_epoch
    guard = DivergenceGuard(search.divergence_factor, runtime, "search.divergence_factor")
    return SearchParts(supernet, w_opt, a_opt, build_scheduler(w_opt, weight_spec, total, steps),
                       build_scheduler(a_opt, arch_spec, arch_total, steps), guard)


def loss_step(model, loss_fn, batch, optimizers, runtime: Runtime, clip: float | None, params,
              penalty: Callable[[], torch.Tensor | None] = lambda: None):
    """One step; `penalty()` (architecture steps: the supernet's `arch_penalty`) is added
    to the loss it minimises, not to the data loss it returns."""
    noisy, clean = to_device(batch, runtime, memory_format(runtime, model))
    for optimizer in optimizers:
        optimizer.zero_grad(set_to_none=True)
    with autocast(runtime):
        loss = loss_fn(model(noisy).float(), clean)
    extra = penalty()
    (loss if extra is None else loss + extra).backward()
    if clip is not None:
        torch.nn.utils.clip_grad_norm_(params, clip)
    for optimizer in optimizers:
        optimizer.step()
    return loss.detach()


def train_epoch(parts: SearchParts, epoch: int, study, runtime: Runtime, batches_w,
                batches_a, after_step: Callable[[int], bool] = lambda steps: False) -> float:
    """One epoch; `after_step(steps done in the epoch)` may end it early (True)."""
    supernet, w_opt, a_opt = parts.supernet, parts.weight_optimizer, parts.arch_optimizer
    search, loss_fn = study.search, DenoiseLoss(**study.search.loss.model_dump())
    arch_on = epoch >= search.warmup_epochs
    weights = supernet.weight_parameters()
    total = torch.zeros((), device=runtime.device)
    joint = search.strategy == "joint"  # one loss and step on the same batch: no Train-A batch
    weights_first = get_space(study.search_space.name).bilevel_order == "weights_first"
    pairs = zip(batches_w(epoch), repeat(None) if joint else batches_a(epoch))
    arch_penalty, none = supernet.arch_penalty, lambda: None  # the penalty: arch steps only
    for step, (batch_w, batch_a) in enumerate(pairs):
        supernet.on_step(epoch * search.steps_per_epoch + step)  # e.g. the Gumbel temperature
        if joint:
            step_opts, penalty = ([w_opt, a_opt], arch_penalty) if arch_on else ([w_opt], none)
            step_loss = loss_step(supernet, loss_fn, batch_w, step_opts, runtime,
                                  search.grad_clip_norm, supernet.parameters(), penalty)
        else:  # the space's bilevel_order: architecture then weights, or Algorithm 1's
            if arch_on and not weights_first:
                loss_step(supernet, loss_fn, batch_a, [a_opt], runtime, None, [], arch_penalty)
            step_loss = loss_step(supernet, loss_fn, batch_w, [w_opt], runtime,
                                  search.grad_clip_norm, weights)
            if arch_on and weights_first:
                loss_step(supernet, loss_fn, batch_a, [a_opt], runtime, None, [], arch_penalty)
        total += step_loss
        parts.guard.update(step_loss, step)
        parts.weight_scheduler.step()
        if arch_on:
            parts.arch_scheduler.step()
        if after_step(step + 1):
            return finite_or_raise(total.item() / (step + 1), "train/loss")
    return finite_or_raise(total.item() / search.steps_per_epoch, "train/loss")


def state_dict(parts: SearchParts, epoch: int, best: Best, elapsed: float,
               history: SearchHistory) -> dict[str, Any]:
    return {
        "epoch": epoch,
        "elapsed_s": elapsed,
        "model": parts.supernet.state_dict(),
        "optimizers": [parts.weight_optimizer.state_dict(), parts.arch_optimizer.state_dict()],
        "schedulers": [parts.weight_scheduler.state_dict(), parts.arch_scheduler.state_dict()],
        "best": dataclasses.asdict(best),
        "history": history.to_state(),
        "guard": parts.guard.state(),
    }


def load_state(parts: SearchParts, state: dict[str, Any]) -> tuple[int, Best]:
    parts.supernet.load_state_dict(state["model"])
    targets = (parts.weight_optimizer, parts.arch_optimizer, parts.weight_scheduler,
               parts.arch_scheduler)
    for target, saved in zip(targets, [*state["optimizers"], *state["schedulers"]]):
        target.load_state_dict(saved)
    parts.guard.load(state.get("guard"))
    return state["epoch"] + 1, Best(**state["best"])


def update_best(best: Best, epoch: int, metrics: dict, supernet, study, step: int = -1) -> bool:
    """Keep the best evaluation's genotype (and, for inheritance, the supernet's weights);
    True when patience is exhausted."""
    if epoch < study.search.validate_from_epoch and epoch < study.search.epochs - 1:
        return False
    score = metrics[f"val/{study.search.select_by}"]
    if score > best.score:
        genotype = supernet.derive()
        provenance = {**genotype.provenance, "epoch": epoch, "val_score": metrics["val/score"],
                      "val_psnr": metrics["val/psnr"]}
        best.score, best.epoch, best.stale, best.step = score, epoch, 0, step
        best.genotype = dataclasses.replace(genotype, provenance=provenance).to_dict()
        if study.retrain_start() == "inherit":
            best.weights = {key: value.detach().cpu().clone()
                            for key, value in supernet.state_dict().items()}
    else:
        best.stale += 1
    return study.search.patience is not None and best.stale >= study.search.patience


class Evaluator:
    """Validation on V every `search.eval_every` training steps (default: at the end of
    each epoch), feeding best-on-V and patience; called after every step of an epoch."""

    def __init__(self, supernet, study, best: Best, images: list[NamedImage],
                 keys: list[str], runtime: Runtime) -> None:
        self.supernet, self.study, self.best = supernet, study, best
        self.images, self.keys, self.runtime = images, keys, runtime
        self.every = study.search.eval_every or study.search.steps_per_epoch
        self.start(0)

    def start(self, epoch: int) -> None:
        self.epoch, self.steps, self.stop, self.metrics = epoch, 0, False, {}

    def __call__(self, steps: int) -> bool:
        """After `steps` steps of the epoch; True when patience ran out (stop)."""
        self.steps = steps
        if steps % self.every:
            return False
        self.metrics = validate(self.supernet, self.images, self.keys, self.runtime)
        self.supernet.train()
        done = self.epoch * self.study.search.steps_per_epoch + steps
        self.stop = update_best(self.best, self.epoch, self.metrics, self.supernet, self.study,
                                done)
        return self.stop


def run_search(study, data: SearchData, report: Reporter, runtime: Runtime,
               state: dict[str, Any] | None = None) -> Genotype:
    """Search `study`'s space on `data`; returns the genotype of the best epoch."""
    torch.manual_seed(study.seed)
    reset_peak_memory(runtime)
    study = with_image_epochs(study, data)
    parts = build_search(study, runtime)
    supernet, search = parts.supernet, study.search
    start, best = load_state(parts, state) if state else (0, Best())
    elapsed = state.get("elapsed_s", 0.0) if state else 0.0  # search wall time so far
    history = SearchHistory.from_state(state.get("history") if state else None)
    views = views_for(study.search_space.name)
    # joint (single-level): weights and architecture share batches from Train-W and Train-A;
    # rsws: no architecture steps, the weights train on both
    sampled = search.strategy == "rsws"
    train_w = data.train_w + data.train_a if search.strategy == "joint" or sampled \
        else data.train_w
    cover = search.epoch == "images"
    clock = StepClock(runtime, memory_format(runtime, supernet))
    batches_w, batches_a = (
        clock.timing(patch_batches(images, study.data, search.batch_size, search.steps_per_epoch,
                                   seed, search.num_workers, pin_memory=runtime.non_blocking,
                                   cover=cover, device=runtime.device))
        for images, seed in ((train_w, study.seed), (data.train_a, study.seed + 1)))
    val_images, keys = centre_crop(data.val, search.val_crop), validation_keys(study.data.noise)
    monitor = Monitor.build(data.monitor, search.monitor_crop, keys, runtime)
    evaluate = Evaluator(supernet, study, best, val_images, keys, runtime)
    pool = rsws.candidates(supernet, study.seed, search.rsws.samples) if sampled else []
    for epoch in range(start, search.epochs):
        began = time.perf_counter()
        supernet.on_epoch_start(epoch, search.epochs)
        supernet.train()
        evaluate.start(epoch)
        clock.start()
        if sampled:  # one drawn architecture per step; validations score the probe pool[0]
            loss = rsws.train_epoch(parts, epoch, study, runtime, batches_w, pool[0],
                                    clock.apart(evaluate), loss_step)
        else:
            loss = train_epoch(parts, epoch, study, runtime, batches_w, batches_a,
                               clock.apart(evaluate))
        metrics, stop = {"train/loss": loss, **clock.metrics(), **evaluate.metrics}, evaluate.stop
        if sampled and (stop or epoch == search.epochs - 1):  # the N candidates on V
            metrics.update(rsws.choose(supernet, pool, best, epoch, val_images, keys, runtime,
                                       search.select_by))
        elapsed += time.perf_counter() - began
        metrics.update({
            **entropy_metric(supernet),
            **supernet.search_metrics(),
            "search/lr": parts.weight_optimizer.param_groups[0]["lr"],
            "best/score": best.score if best.epoch >= 0 else metrics["val/score"],
            "time/epoch_s": time.perf_counter() - began,
            "search/time_s": elapsed,
            "search/peak_mem_mib": peak_memory_mib(runtime),
            **({"search/stopped_early": float(stop),
                "search/stopped_at_step": epoch * search.steps_per_epoch + evaluate.steps}
               if stop or epoch == search.epochs - 1 else {}),
        })
        metrics.update(monitor(supernet))  # after the times: not search cost
        with torch.no_grad():
            history.record(epoch, metrics, views.weight_tables(supernet))
        report(epoch, metrics, state_dict(parts, epoch, best, elapsed, history))
        if stop:
            break
    return Genotype.from_dict(best.genotype, source="best genotype")


def with_image_epochs(study, data: SearchData):
    """`search.epoch: images`: the study with `steps_per_epoch` = ceil(Train-W images /
    batch) (joint: Train-W and Train-A), one crop of each image an epoch as in the HiNAS
    code; other studies as they are."""
    search = study.search
    if search.epoch != "images":
        return study
    images = len(data.train_w) + (len(data.train_a) if search.strategy in ("joint", "rsws")
                                  else 0)
    steps = image_epoch_steps(images, search.batch_size)
    return study.model_copy(update={"search": search.model_copy(
        update={"steps_per_epoch": steps})})


def entropy_metric(supernet) -> dict[str, float]:
    """search/alpha_entropy; left out for a supernet with nothing to search (a fixed
    baseline), whose entropy would be NaN."""
    entropy = supernet.arch_entropy()
    return {} if math.isnan(entropy) else {"search/alpha_entropy": entropy}
