"""Run in a fresh process by test_memory.py: the peak resident set of two real CPU training
steps (argv: study JSON, phase, genotype JSON for retrain), weights included, as JSON."""

import json
import sys

import torch

from searchspaces.genotype import Genotype
from searchspaces.registry import build_derived_from_genotype, get_space
from studyspec.schema import Study
from trainables.loops.devices import tune_allocator
from trainables.loops.losses import DenoiseLoss
from trainables.loops.memory_study import channels, retrain_shape, search_shape
from trainables.loops.optim import build_optimizer
from trainables.loops.retrain import derived_options


def status_bytes(field: str) -> int:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith(field):
                return int(line.split()[1]) * 1024
    raise KeyError(field)


def build(study: Study, phase: str):
    """The network, the step's shape and its optimiser specs, as the loops build them."""
    if phase == "search":
        space = get_space(study.search_space.name)
        model = space.build_supernet(study.search_space.resolved_options(), channels(study))
        return model, search_shape(study), [study.search.weight_optimizer,
                                            study.search.arch_optimizer]
    genotype = Genotype.from_json(sys.argv[3])
    model = build_derived_from_genotype(genotype, derived_options(study), channels(study))
    return model, retrain_shape(study), [study.retrain.optimizer]


def main() -> None:
    study, phase = Study.model_validate(json.loads(sys.argv[1])), sys.argv[2]
    torch.set_num_threads(1)
    tune_allocator()  # as a trial's process does
    model, shape, specs = build(study, phase)
    layout = torch.channels_last if getattr(model, "prefers_nhwc", False) else None
    model = model.to(memory_format=layout or torch.contiguous_format)
    optimizers = [build_optimizer(group(model), spec.model_dump())
                  for group, spec in zip(shape.groups, specs)]
    loss_fn = DenoiseLoss(**shape.loss)
    size = (shape.batch_size, shape.channels, shape.patch_size, shape.patch_size)
    with open("/proc/self/clear_refs", "w") as refs:
        refs.write("5")  # VmHWM := VmRSS
    base = status_bytes("VmRSS:")
    for _ in range(2):  # the second step holds the optimiser state
        noisy, clean = torch.rand(size), torch.rand(size)
        if layout is not None:
            noisy, clean = (t.contiguous(memory_format=layout) for t in (noisy, clean))
        for optimizer in optimizers:
            optimizer.zero_grad(set_to_none=True)
        loss_fn(model(noisy).float(), clean).backward()
        for optimizer in optimizers:
            optimizer.step()
    weights = sum(p.numel() * p.element_size() for p in model.parameters())
    print(json.dumps({"peak": status_bytes("VmHWM:") - base + weights}))


if __name__ == "__main__":
    main()
