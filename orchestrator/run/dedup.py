"""MLflow runs of de-duplicated retraining: a unit whose retrain work another unit already did.

The study searcher runs such work once; the unit that would have repeated it
still gets its own child run (its arm, seed and labels as tags) with a
`dedup_of` tag naming the run that did the work, so both units appear in the
tables (`orchestrator.results.aggregate` reads the metrics through the link).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from studyspec.dotted import with_overrides
from trainables.tracking import CACHED_FROM, Tracker, logged_params, run_name
from trainables.tune import TrialContext

COPIED = ("method", "eval_protocol", "arch_hash", "noise", "trial_id")  # from the source run


def trial_study(arm_study: dict[str, Any], config: dict[str, Any]) -> dict[str, Any]:
    """The study a trial of `config` runs (its seed, Optuna values and a proxy's overrides;
    a retrain's degradation and stage count as `noise_used` / `stages_used`)."""
    study = with_overrides(arm_study, {**config["tuned"], **config.get("overrides", {}),
                                       "seed": config["seed"]})
    if config["phase"] == "retrain":
        study["retrain"] = {**study["retrain"], "noise_used": config["noise"],
                            **({"stages_used": config["stages"]} if "stages" in config else {})}
    return study


def linked_run(tracker: Tracker, context: TrialContext, arm_study: dict[str, Any],
               config: dict[str, Any], tags: dict[str, str], name: str | None = None,
               metrics: dict[str, float] | None = None) -> str:
    """A FINISHED child run for a unit whose work another run did (`tags` link it): the
    trial's logged params, and `metrics` when given."""
    study, phase = trial_study(arm_study, config), config["phase"]
    run_id = tracker.start_run(context.experiment_id, name or run_name(config, phase, study),
                               tags, context.parent_run_id)
    tracker.log_params(run_id, logged_params(study, phase, context.param_keys))
    if metrics:
        tracker.log_metrics(run_id, metrics, step=0)
    tracker.finish(run_id)
    return run_id


@dataclass(frozen=True)
class DedupLinker:
    context: TrialContext
    studies: dict[str, dict[str, Any]]  # arm name -> the arm's study (its params are logged)

    def __call__(self, config: dict[str, Any], source_run_id: str) -> None:
        tracker = Tracker(self.context.tracking_uri, spool_under=self.context.parent_run_id,
                          spool_root=self.context.spool_root)
        if self.existing(tracker, config, source_run_id):
            return  # created before an interruption: resume does not repeat it
        source = tracker.client.get_run(source_run_id).data.tags
        tags = {"study": self.context.study, "arm": config["arm"], "phase": "retrain",
                **{key: source.get(key, "") for key in COPIED},
                **config["labels"], "search_run_id": config["candidate"]["source"],
                "dedup_of": source_run_id, "dedup_key": config["dedup_key"],
                # the work an earlier study did (orchestrator.run.cache), if so
                **({CACHED_FROM: source[CACHED_FROM]} if CACHED_FROM in source else {})}
        linked_run(tracker, self.context, self.studies[config["arm"]], config, tags)

    def existing(self, tracker: Tracker, config: dict[str, Any], source_run_id: str) -> bool:
        query = (f"tags.mlflow.parentRunId = '{self.context.parent_run_id}' and "
                 f"tags.unit = '{config['unit']}' and tags.dedup_of = '{source_run_id}'")
        runs = tracker.client.search_runs([self.context.experiment_id], filter_string=query)
        return bool(runs)
