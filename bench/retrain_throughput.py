"""Retraining throughput per family at each study's shipped settings: images per second of
the retrain step (the study's `retrain.batch_size`, `data.patch_size`, loss, optimizer and
first noise level, on `data.train`) and the share of it spent making batches, so that a
regression in any family's step, or in the data pipeline, shows.

The networks: HiNAS's official 3c4n genotype (`studies/genotypes/hinas-official-3c4n.json`)
at `studies/hinas.yaml`'s retrain options; MoD-NAS's appendix Table 7 genotype unrolled to
T = 1 and T = 3 (`studies/modnas.yaml`, `retrain.stages`); the network Superkernel NAS's
supernet derives at initialisation (`studies/superkernel.yaml`, whose shipped study trains
it inside the search and tests it as distilled: the retrain step stands for that
training); DnCNN-17 as a baseline arm of `studies/hinas.yaml` (`baselines: [dncnn]`)
trains it. Each runs one warm-up step, then `STEPS` timed steps through the retrain loop
(`trainables.loops.retrain.train_epoch`) with the trial's threads (`resources.retrain.cpu`)
and `StepClock`'s split of data and compute time. `data_share_of_step` is the largest share
over the families, each beside the numpy reference pipeline's share in the same run.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from bench.modnas_latency import TABLE7

ROOT = Path(__file__).resolve().parents[1]
# family -> (study file, arm (None: the study itself), genotype file or None, stages)
FAMILIES: dict[str, tuple[str, str | None, Path | None, int | None]] = {
    "hinas": ("studies/hinas.yaml", None, ROOT / "studies/genotypes/hinas-official-3c4n.json",
              None),
    "modnas_t1": ("studies/modnas.yaml", None, TABLE7, 1),
    "modnas_t3": ("studies/modnas.yaml", None, TABLE7, 3),
    "superkernel": ("studies/superkernel.yaml", None, None, None),
    "dncnn": ("studies/hinas.yaml", "baseline-dncnn", None, None),
}
STEPS = {"tiny": 2, "quick": 4, "full": 10}  # timed steps
TINY = {"data.patch_size": 32, "retrain.batch_size": 2}  # a test that the bench runs


def family_study(family: str, size: str):
    """The family's resolved study (its arm's, for an arm), the network's genotype and the
    training images."""
    from orchestrator.run import prepare_arms
    from orchestrator.study import load_study
    from searchspaces.genotype import Genotype
    from searchspaces.registry import get_space

    file, arm, genotype_file, stages = FAMILIES[family]
    assignments = [f"{key}={value}" for key, value in TINY.items()] if size == "tiny" else []
    if arm is not None:  # a baseline beside the study's own arm, at the study's settings
        assignments.append(f"baselines=[{arm.removeprefix('baseline-')}]")
    study = load_study(ROOT / file, None, assignments)
    prepared = prepare_arms(study, str(ROOT / file), (arm,) if arm else ())
    plan = prepared.plans[0]  # the named arm, else the study's first
    images = prepared.data[plan.name].retrain.train
    if plan.genotype is not None:
        return plan.study, Genotype.from_json(plan.genotype), images
    space = get_space(plan.study.search_space.name)
    if genotype_file is None:
        genotype = space.build_supernet(plan.study.search_space.resolved_options(),
                                        3 if plan.study.data.color else 1).derive()
    else:
        genotype = Genotype.load(genotype_file)
    return plan.study, space.at_stages(genotype, stages) if stages else genotype, images


def measure(family: str, size: str, pipeline: str | None = None) -> dict[str, Any]:
    """Images per second of the family's retrain step and the share spent on data
    (`pipeline`: `data.pipeline` other than the study's)."""
    from trainables.loops import retrain_throughput

    study, genotype, images = family_study(family, size)
    if pipeline is not None:
        study = study.model_copy(update={"data": study.data.model_copy(
            update={"pipeline": pipeline})})
    found = retrain_throughput(study, genotype, images, STEPS[size])
    return {"images_per_s": round(found["images_per_s"], 3),
            "data_share": round(found["data_share"], 4), "batch": study.retrain.batch_size,
            "patch": study.data.patch_size, "pipeline": study.data.pipeline,
            "threads": found["threads"], "params": found["params"]}


def throughput(family: str):
    def bench(size: str) -> dict[str, Any]:
        detail = measure(family, size)
        return {"value": detail["images_per_s"], "unit": "images/s", "target": None,
                "detail": {**detail, "load_average": os.getloadavg()[0]}}
    bench.__name__ = f"retrain_images_per_s_{family}"
    return bench


def data_share_of_step(size: str) -> dict[str, Any]:
    """The largest data share over the families; beside each, the numpy reference
    pipeline's share measured in the same run."""
    shares = {family: measure(family, size) for family in FAMILIES}
    numpy = {family: measure(family, size, "numpy") for family in FAMILIES}
    worst = max(shares, key=lambda family: shares[family]["data_share"])
    return {"value": shares[worst]["data_share"], "unit": "share", "target": 0.05,
            "detail": {"worst": worst, "load_average": os.getloadavg()[0],
                       **{family: {"data_share": d["data_share"],
                                   "numpy_data_share": numpy[family]["data_share"],
                                   "images_per_s": d["images_per_s"]}
                          for family, d in shares.items()}}}


retrain_images_per_s_hinas = throughput("hinas")
retrain_images_per_s_modnas_t1 = throughput("modnas_t1")
retrain_images_per_s_modnas_t3 = throughput("modnas_t3")
retrain_images_per_s_superkernel = throughput("superkernel")
retrain_images_per_s_dncnn = throughput("dncnn")
