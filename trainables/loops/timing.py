"""Seconds of one training step and of one evaluation pass of a network on this machine's
device, for the cost estimate of a study before it starts (`study --dry-run`).

The step is the one the loops run (the study's loss, backward, an optimiser update of
every parameter group) on random data of the step's shape, timed after one warm-up
step with as many threads as a trial gets (`resources.<phase>.cpu`). Times are kept on
disk between commands (`estimate_store`, per machine), relative to `reference_seconds()`
when they were measured: read back on a machine loaded since, they grow with the load.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable

import torch
from torch import nn

from searchspaces.genotype import Genotype
from searchspaces.registry import build_derived_from_genotype, get_space
from trainables.loops.devices import threads_for
from trainables.loops.estimate_store import recalled
from trainables.loops.losses import DenoiseLoss
from trainables.loops.memory import StepShape, on_meta

REPEATS = 2  # timed steps after the warm-up


def reference_seconds() -> float:
    """The median of three runs of a small mix of Python and one-thread torch work (0.035 s
    on this project's 2 quiet CPU cores): how loaded the machine is now."""
    def once() -> float:
        began = time.perf_counter()
        x = torch.rand(1, 8, 32, 32)
        conv = torch.nn.Conv2d(8, 8, 3, padding=1)
        with torch.no_grad():
            for _ in range(200):
                x = conv(x).tanh()
        sorted({str(i): i for i in range(100000)})
        return time.perf_counter() - began

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return sorted(once() for _ in range(3))[1]
    finally:
        torch.set_num_threads(before)


@functools.cache
def reference_now() -> float:
    """`reference_seconds()` once per process."""
    return reference_seconds()


def stored_seconds(key: list, measure: Callable[[], float]) -> float:
    """`measure()`'s seconds, or those stored for `key` on this machine, scaled by its load
    now against then."""
    kept = recalled("timing", key, lambda: {"seconds": measure(),
                                             "reference": reference_now()}, per_machine=True)
    return kept["seconds"] * reference_now() / kept["reference"]


def shape_key(shape: StepShape) -> list:
    return [shape.batch_size, shape.channels, shape.patch_size, shape.loss,
            list(shape.optimizers)]


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def with_threads(cpu_share: float, work: Callable[[], float]) -> float:
    """`work()` with the intra-op threads a trial of `cpu_share` CPUs gets."""
    before = torch.get_num_threads()
    torch.set_num_threads(threads_for(cpu_share))
    try:
        return work()
    finally:
        torch.set_num_threads(before)


def step_seconds(build: Callable[[], nn.Module], shape: StepShape, device: torch.device,
                 threads: float = 1) -> float:
    """One training step (forward, loss, backward, update) of the network `build` makes."""
    def timed() -> float:
        model = build().to(device).train()
        size = (shape.batch_size, shape.channels, shape.patch_size, shape.patch_size)
        noisy, clean = torch.rand(size, device=device), torch.rand(size, device=device)
        params = [p for group in shape.groups for p in group(model)]
        optimizer = torch.optim.SGD(params, lr=1e-12)
        loss = DenoiseLoss(**shape.loss)

        def step() -> None:
            optimizer.zero_grad(set_to_none=True)
            loss(model(noisy).float(), clean).backward()
            optimizer.step()

        step()
        synchronize(device)
        started = time.perf_counter()
        for _ in range(REPEATS):
            step()
        synchronize(device)
        return (time.perf_counter() - started) / REPEATS

    return with_threads(threads, timed)


@torch.no_grad()
def forward_seconds_per_pixel(build: Callable[[], nn.Module], channels: int,
                              device: torch.device, threads: float = 1, size: int = 96) -> float:
    """One evaluation forward pass of a `size` x `size` image, per pixel."""
    def timed() -> float:
        model = build().to(device).eval()
        image = torch.rand(1, channels, size, size, device=device)
        model(image)
        synchronize(device)
        started = time.perf_counter()
        for _ in range(REPEATS):
            model(image)
        synchronize(device)
        return (time.perf_counter() - started) / REPEATS / size**2

    return with_threads(threads, timed)


def pixels(images, crop: int | None = None) -> int:
    total = 0
    for image in images:
        height, width = image.pixels.shape[:2]
        total += min(height, crop or height) * min(width, crop or width)
    return total


def search_seconds(study, data, device: torch.device) -> float:
    """One search trial's compute: weight (and architecture) steps, and the validation (and
    monitor sets) every `eval_every` steps or epoch."""
    from trainables.loops.memory_study import channels, search_shape

    space, options = get_space(study.search_space.name), study.search_space.resolved_options()
    build = lambda: space.build_supernet(options, channels(study))  # noqa: E731
    search, threads = study.search, study.resources.search.cpu
    network = [space.name, options, channels(study), device.type, threads_for(threads)]
    shape = search_shape(study)
    step = stored_seconds(["search step", network, shape_key(shape)],
                          lambda: step_seconds(build, shape, device, threads))
    per_pixel = stored_seconds(["forward per pixel", network], lambda: forward_seconds_per_pixel(
        build, channels(study), device, threads))
    steps = search.steps_per_epoch or (
        max(1, len(data.train_w) // search.batch_size) if search.epoch == "images" else 100)
    arch_epochs = max(0, search.epochs - search.warmup_epochs) if search.strategy == "bilevel" \
        else 0
    evaluations = search.epochs * (steps // search.eval_every if search.eval_every else 1)
    evaluated = pixels(data.val, search.val_crop) + sum(
        pixels(images) for images in data.monitor.values())
    return (search.epochs + arch_epochs) * steps * step + evaluations * evaluated * per_pixel


def retrain_seconds(study, genotype_json: str | None, data, device: torch.device,
                    stages: int | None = None) -> float:
    """One retrain trial's compute (the arm's genotype, else the largest network the search
    can derive, at `stages` when retrain.stages asks): training steps, validation each
    epoch, the test sets (x8 self-ensemble: 9 passes) and the cost metrics' timed passes."""
    from trainables.loops.memory_study import candidate_genotypes, channels, retrain_shape
    from trainables.loops.retrain import derived_options

    space, options = get_space(study.search_space.name), derived_options(study)
    genotypes = [Genotype.from_json(genotype_json)] if genotype_json else \
        candidate_genotypes(study)
    if genotypes:
        genotype = max(genotypes, key=lambda g: parameter_count(g, options, channels(study)))
        if stages is not None:
            genotype = space.at_stages(genotype, stages)
        build = lambda: build_derived_from_genotype(genotype, options,  # noqa: E731
                                                    channels(study))
        name = genotype.to_json()
    else:  # too large to derive from: the supernet bounds it
        build = lambda: space.build_supernet(options, channels(study))  # noqa: E731
        name = space.name
    retrain, threads = study.retrain, study.resources.retrain.cpu
    network = [name, options, channels(study), device.type, threads_for(threads)]
    per_pixel = stored_seconds(["forward per pixel", network], lambda: forward_seconds_per_pixel(
        build, channels(study), device, threads))
    tested = sum(pixels(images) for images in data.test_sets.values())
    passes = 1 + 8 * retrain.self_ensemble  # x8 self-ensemble: the 8 dihedral variants too
    cost = study.retrain.cost
    evaluation = (tested * passes + (2 + cost.repeats) * cost.input_size**2) * per_pixel
    if data.weights is not None:  # published weights: evaluated only
        return evaluation
    shape = retrain_shape(study)
    step = stored_seconds(["retrain step", network, shape_key(shape)],
                          lambda: step_seconds(build, shape, device, threads))
    steps = retrain.steps_per_epoch or max(1, len(data.train) // retrain.batch_size)
    validated = pixels(data.val, study.search.val_crop)  # centre crops, as the loop takes
    return retrain.epochs * (steps * step + validated * per_pixel) + evaluation


def parameter_count(genotype: Genotype, options, channels: int) -> int:
    """Parameters of the genotype's network (counted on the meta device, kept on disk)."""
    def count() -> int:
        with on_meta():
            return sum(p.numel() for p in build_derived_from_genotype(genotype, options,
                                                                       channels).parameters())
    return recalled("parameters", [genotype.to_json(), options, channels], count)


def retrain_throughput(study, genotype: Genotype, images, steps: int) -> dict[str, float]:
    """Images per second of `steps` retrain steps of `genotype`'s network at the study's
    batch, patch, loss, optimizer, first noise level and `data.pipeline`, on `images`, after
    one warm-up step, with the trial's threads; and the share of their time making batches
    (`StepClock`)."""
    from trainables.loops.devices import configure, memory_format
    from trainables.loops.parts import StepClock, patch_batches
    from trainables.loops.retrain import build_retrain, train_epoch

    study = study.model_copy(update={"retrain": study.retrain.model_copy(
        update={"steps_per_epoch": steps})})
    retrain = study.retrain
    runtime = configure(study.resources.retrain.cpu, study.resources.retrain.gpu,
                        study.precision)
    parts = build_retrain(study, genotype, runtime)
    noise = (retrain.noise or [study.data.noise])[0]
    clock = StepClock(runtime, memory_format(runtime, parts.model))

    def batches(count: int):
        return patch_batches(images, study.data, retrain.batch_size, count, study.seed, 0,
                             noise=noise, device=runtime.device)

    train_epoch(parts, clock.timed(batches(1)(0)), study, runtime)  # warm-up
    clock.start()
    train_epoch(parts, clock.timed(batches(steps)(1)), study, runtime)
    times = clock.metrics()
    total = times["time/data_s"] + times["time/compute_s"]
    return {"images_per_s": retrain.batch_size * steps / total,
            "data_share": times["time/data_s"] / total, "threads": torch.get_num_threads(),
            "params": sum(p.numel() for p in parts.model.parameters())}
