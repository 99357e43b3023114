"""Retraining a derived architecture from its genotype, then testing it; free of Ray and MLflow.

The network is built from the genotype JSON alone (never re-derived
from a supernet), with fresh weights (`retrain.from: scratch`) or the search's
best supernet weights mapped onto it (`inherit`, `RetrainData.start`: the
single-shot procedure of Superkernel NAS, where `retrain.epochs` 0 tests the
distilled network as it is). After the last epoch it is evaluated with the
protocol of `evaluation.py` on every configured test set and level, and its cost
(`cost.py`) is measured on the running device. With `retrain.select:
best_v_last_quarter` the network tested (and returned) is instead the best on V
(val/score) among the epochs that end after 3/4 of the steps, as the HiNAS code
keeps `model_best` from iteration 3/4 max_iter on (`engine/trainer.py`) and tests it
(`tools/dn_eval.py`); the last report's val/ metrics are then that network's, and
retrain/selected_epoch names its epoch, and the last checkpoint holds its weights. The
best weights travel in the state, so a resumed retraining keeps them.
"""

from __future__ import annotations

import io
import time
from dataclasses import dataclass
from typing import Any

import torch

from searchspaces.genotype import Genotype
from searchspaces.registry import build_derived_from_genotype
from trainables.data import RetrainData
from trainables.loops.cost import cost_metrics
from trainables.loops.devices import Runtime, autocast, memory_format
from trainables.loops.evaluation import evaluate_sets
from trainables.loops.losses import DenoiseLoss
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


def derived_options(study) -> dict[str, Any]:
    """The searched options (the trial's, Optuna's picks included), scaled, then overridden."""
    return study.retrain_options()


@dataclass
class RetrainParts:
    """The derived network and what trains it."""

    model: torch.nn.Module
    optimizer: torch.optim.Optimizer
    scheduler: Any
    guard: DivergenceGuard  # fails the trial when train/loss diverges

    best: dict[str, Any] | None = None  # select best_v_last_quarter: score, epoch, model, metrics

    def state(self, epoch: int) -> dict[str, Any]:
        return {"epoch": epoch, "model": self.model.state_dict(),
                "optimizer": self.optimizer.state_dict(), "scheduler": self.scheduler.state_dict(),
                "best": self.best, "guard": self.guard.state()}

    def load(self, state: dict[str, Any]) -> int:
        """Restore a checkpoint; the first epoch still to run."""
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        self.best = state.get("best")
        self.guard.load(state.get("guard"))
        return state["epoch"] + 1

    def keep_if_best(self, epoch: int, metrics: dict[str, float], study) -> None:
        """select best_v_last_quarter: keep this epoch's weights if it ends after 3/4 of the
        steps and beats the kept val/score (strictly, as the code's `best_val <`)."""
        retrain = study.retrain
        if retrain.select != "best_v_last_quarter" or not in_last_quarter(
                epoch, retrain.epochs, retrain.steps_per_epoch):
            return
        if self.best is None or metrics["val/score"] > self.best["score"]:
            weights = {k: v.detach().cpu().clone() for k, v in self.model.state_dict().items()}
            val = {k: v for k, v in metrics.items() if k.startswith("val/")}
            self.best = {"score": metrics["val/score"], "epoch": epoch, "model": weights,
                         "metrics": val}

    def select(self) -> dict[str, float]:
        """Load the kept weights (if any) into the model; their val/ metrics and epoch."""
        if self.best is None:
            return {}
        self.model.load_state_dict(self.best["model"])
        return {**self.best["metrics"], "retrain/selected_epoch": float(self.best["epoch"])}


def in_last_quarter(epoch: int, epochs: int, steps_per_epoch: int) -> bool:
    """Whether 0-based `epoch` ends after 3/4 of the steps (the code: iteration >
    int(max_iter * 3 / 4), validated every VALIDATE_PERIOD iterations)."""
    return (epoch + 1) * steps_per_epoch > (3 * epochs * steps_per_epoch) // 4


def build_retrain(study, genotype: Genotype, runtime: Runtime) -> RetrainParts:
    channels = 3 if study.data.color else 1
    model = build_derived_from_genotype(genotype, derived_options(study), channels)
    model = model.to(runtime.device, memory_format=memory_format(runtime, model))
    spec = study.retrain.optimizer.model_dump()
    optimizer = build_optimizer(model.parameters(), spec, parameter_names(model))
    total = study.retrain.epochs * study.retrain.steps_per_epoch
    scheduler = build_scheduler(optimizer, spec, total, study.retrain.steps_per_epoch)
    guard = DivergenceGuard(study.retrain.divergence_factor, runtime,
                            "retrain.divergence_factor")
    return RetrainParts(model, optimizer, scheduler, guard)


def train_epoch(parts: RetrainParts, batches, study, runtime: Runtime) -> float:
    model, optimizer, scheduler = parts.model, parts.optimizer, parts.scheduler
    loss_fn, clip = DenoiseLoss(**study.retrain.loss.model_dump()), study.retrain.grad_clip_value
    total = torch.zeros((), device=runtime.device)
    model.train()
    for step, batch in enumerate(batches):
        noisy, clean = to_device(batch, runtime, memory_format(runtime, model))
        optimizer.zero_grad(set_to_none=True)
        with autocast(runtime):
            loss = loss_fn(model(noisy).float(), clean)
        loss.backward()
        if clip is not None:
            torch.nn.utils.clip_grad_value_(model.parameters(), clip)
        optimizer.step()
        scheduler.step()
        total += loss.detach()
        parts.guard.update(loss, step)
    return finite_or_raise(total.item() / study.retrain.steps_per_epoch, "train/loss")


def test_metrics(model, study, data: RetrainData, keys: list[str], runtime: Runtime) -> dict:
    scores = evaluate_sets(model, data.test_sets, keys, runtime.device,
                           self_ensemble=study.retrain.self_ensemble)
    channels = 3 if study.data.color else 1
    costs = cost_metrics(model, channels, runtime.device, size=study.retrain.cost.input_size,
                         repeats=study.retrain.cost.repeats)
    return {**{f"test/{key}": value for key, value in scores.items()},
            **{f"cost/{key}": value for key, value in costs.items()}}


def evaluate_weights(study, genotype: Genotype, noise, data: RetrainData, report: Reporter,
                     runtime: Runtime):
    """A baseline's published weights or inherited ones, not trained: validated and tested
    like the last epoch of a retraining (the same val/, test/ and cost/ metrics), reported
    as epoch 0."""
    channels = 3 if study.data.color else 1
    model = build_derived_from_genotype(genotype, derived_options(study), channels)
    weights = data.start if data.weights is None else \
        torch.load(io.BytesIO(data.weights), map_location="cpu", weights_only=True)
    if weights is None:
        raise ValueError("retrain.epochs: 0 trains nothing and the network inherits no weights")
    model.load_state_dict(weights, strict=True)
    model = model.to(runtime.device, memory_format=memory_format(runtime, model))
    keys = validation_keys(noise)
    metrics = validate(model, centre_crop(data.val, study.search.val_crop), keys, runtime)
    metrics.update(test_metrics(model, study, data, study.retrain.test_keys or
                                noise.test_keys() or keys, runtime))
    report(0, metrics, {"epoch": 0})
    return model, metrics


def run_retrain(study, genotype: Genotype, noise, data: RetrainData, report: Reporter,
                runtime: Runtime, state: dict[str, Any] | None = None):
    """Train the derived net of `genotype` on `noise`, from scratch or from inherited weights
    (or evaluate published or inherited weights: `retrain.epochs` 0); returns (model, final
    metrics)."""
    if data.weights is not None or study.retrain.epochs == 0:
        return evaluate_weights(study, genotype, noise, data, report, runtime)
    torch.manual_seed(study.seed)
    parts = build_retrain(study, genotype, runtime)
    if data.start is not None:
        parts.model.load_state_dict(data.start, strict=True)
    model, retrain = parts.model, study.retrain
    start = parts.load(state) if state else 0
    batches = patch_batches(data.train, study.data, retrain.batch_size, retrain.steps_per_epoch,
                            study.seed, retrain.num_workers, noise=noise,
                            pin_memory=runtime.non_blocking, device=runtime.device)
    clock = StepClock(runtime, memory_format(runtime, model))
    val_images, keys = centre_crop(data.val, study.search.val_crop), validation_keys(noise)
    test_keys = retrain.test_keys or noise.test_keys() or keys
    metrics: dict[str, float] = {}
    for epoch in range(start, retrain.epochs):
        began = time.perf_counter()
        clock.start()
        metrics = {"train/loss": train_epoch(parts, clock.timed(batches(epoch)), study, runtime),
                   **clock.metrics()}
        metrics.update(validate(model, val_images, keys, runtime))
        metrics["time/epoch_s"] = time.perf_counter() - began
        parts.keep_if_best(epoch, metrics, study)
        if epoch == retrain.epochs - 1:
            metrics.update(parts.select())
            metrics.update(test_metrics(model, study, data, test_keys, runtime))
        report(epoch, metrics, parts.state(epoch))
    return model, metrics
