"""Ray Tune adapter of the retraining: a genotype (and a degradation) in, tested weights out."""

from __future__ import annotations

import io
from collections.abc import Callable
from dataclasses import replace
from typing import Any

import torch

from searchspaces.genotype import Genotype
from studyspec.schema import NoiseSpec, Study
from trainables.data import RetrainData
from trainables.loops import configure, fetch_supernet, inherited_weights, validation_keys
from trainables.plots import log_plots, retrain_plots, sample_strips
from trainables.tracking import artifact_run
from trainables.tune.session import TrialContext, TrialSession, run_in_session


def retrain_trial(config: dict[str, Any], study: dict[str, Any], data: RetrainData,
                  context: TrialContext, run_retrain: Callable) -> None:
    """`config["candidate"]`: {"genotype": JSON, "source": search run id}; `config["noise"]`:
    the degradation; `study` already carries the search trial's seed and Optuna picks. With
    `retrain.from: inherit` the network starts from the search run's best supernet weights."""
    parsed = Study.model_validate(study)
    genotype = Genotype.from_json(config["candidate"]["genotype"], source="retrain genotype")
    # retrain.stages: the searched architecture (its arch_hash, genotype.json) unrolled to
    # config["stages"] stages for this run (MoD-NAS Table 2)
    network = genotype if config.get("stages") is None else \
        parsed.space().at_stages(genotype, config["stages"])
    noise = NoiseSpec.model_validate(config["noise"])
    tags = {"arch_hash": genotype.arch_hash(), "noise": ",".join(noise.test_keys()),
            "search_run_id": config["candidate"].get("source", "")}
    used = {"noise_used": config["noise"],
            **({"stages_used": config["stages"]} if "stages" in config else {})}
    params = {**study, "retrain": {**study.get("retrain", {}), **used}}
    session = TrialSession.open(context, "retrain", config, params, tags=tags)
    start = parsed.retrain_start() if data.weights is None else "published"
    session.tracker.log_params(session.run_id, {"retrain": {"from": start}})
    resources = parsed.resources.retrain
    runtime = configure(resources.cpu, resources.gpu, parsed.precision)
    extra = {"arch_hash": genotype.arch_hash()}

    def report(epoch: int, metrics: dict[str, float], state: dict[str, Any]) -> None:
        session.report(epoch, metrics, state, extra=extra)

    def work():
        trial_data = data
        if start == "inherit":
            client, source = session.tracker.client, config["candidate"].get("source")
            supernet = fetch_supernet(client, artifact_run(client, source))  # a cached search's:
            #                                                        the original run's weights
            trial_data = replace(data, start=inherited_weights(parsed, network, supernet))
        model, metrics = run_retrain(parsed, network, noise, trial_data, report, runtime,
                                     session.state)
        session.log_genotype(genotype)
        buffer = io.BytesIO()
        torch.save({k: v.cpu() for k, v in model.state_dict().items()}, buffer)
        session.tracker.log_bytes(session.run_id, buffer.getvalue(), "weights/model.pt")
        keys = parsed.retrain.test_keys or noise.test_keys() or validation_keys(noise)
        for path, png in sample_strips(model, data.test_sets, keys, runtime.device).items():
            session.tracker.log_bytes(session.run_id, png, path)
        images = data.test_sets or {"validation": data.val}
        log_plots(session.tracker, session.run_id,
                  retrain_plots(network, model, images, keys, runtime.device))

    run_in_session(session, work)
