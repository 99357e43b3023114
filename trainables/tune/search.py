"""Ray Tune adapter of the supernet search: a resolved study in, the best genotype out."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from studyspec.schema import Study
from trainables.data import SearchData
from trainables.loops import SUPERNET_ARTIFACT, configure, supernet_bytes
from trainables.plots import log_plots, search_plots
from trainables.tune.session import TrialContext, TrialSession, run_in_session


def search_trial(config: dict[str, Any], study: dict[str, Any], data: SearchData,
                 context: TrialContext, run_search: Callable) -> None:
    """`study` is the arm's study with the trial's seed and Optuna values applied."""
    parsed = Study.model_validate(study)  # validated again inside the trial
    session = TrialSession.open(context, "search", config, study, tags=config_tags(config))
    resources = parsed.resources.search
    runtime = configure(resources.cpu, resources.gpu, parsed.precision)
    last = {"state": session.state}  # the latest state: its history draws the plots

    def report(epoch: int, metrics: dict[str, float], state: dict[str, Any]) -> None:
        last["state"] = state
        best = state["best"]["genotype"]
        session.report(epoch, metrics, state, extra={"genotype": json.dumps(best)})

    def work():
        genotype = run_search(parsed, data, report, runtime, session.state)
        session.log_genotype(genotype)
        weights = ((last["state"] or {}).get("best") or {}).get("weights")
        if weights is not None:  # the derived network inherits them (retrain.from: inherit)
            session.tracker.log_bytes(session.run_id, supernet_bytes(weights), SUPERNET_ARTIFACT)
        log_plots(session.tracker, session.run_id, search_plots(genotype, last["state"]))

    run_in_session(session, work)


def config_tags(config: dict[str, Any]) -> dict[str, str]:
    return {f"tuned.{key}": str(value) for key, value in config["tuned"].items()}
