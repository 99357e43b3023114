"""Results reused across studies: a unit of work that some study already finished is not
run again.

A unit (a search, or a retraining at one degradation and stage count) is named by a
content key (`orchestrator.study.units`: `cache_key`): the resolved settings that affect
its result, its seed, its genotype's `arch_hash` (a retraining), and the arm's `identity`
here: the code's commit, the installed package set, the data manifests' hashes and the
evaluation protocol. Every trial run carries its key as a tag and, when it ends, its last
report to Tune as `unit_result.json`. Before the study searcher hands a unit to Tune it
asks the tracking store for a FINISHED run with the unit's key (in any experiment); when
there is one, the unit gets a new child run under this study, FINISHED at once with the
original's metrics, a `cached_from` tag naming the original (whose artifacts it links, not
copies), and the searcher goes on as if the trial had reported that result. Tables count
it like any other run.

The cache is off for a study run from a checkout with uncommitted changes (the commit would
not say what computed the results; nothing is tagged for reuse either, one line says so) or
from outside a checkout; `--no-cache` runs everything but still tags the runs for later.
Settings that do not change a result are not in the key: names, resources, tracking, the
data's folder (its manifest is). The in-study dedup of retraining uses the same key.
"""

from __future__ import annotations

import json
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mlflow.exceptions import MlflowException

from orchestrator.results import all_experiment_ids, write_report
from orchestrator.run.dedup import DedupLinker, linked_run
from orchestrator.run.searcher import StudySearcher
from orchestrator.study import StudyError
from trainables.loops import protocol_hash
from trainables.tracking import (
    CACHED_FROM,
    COMMIT_TAG,
    DATA_TAG,
    DIRTY_TAG,
    PACKAGE_SET_TAG,
    Tracker,
    dataset_label,
    store_exists,
)
from trainables.tune import RESULT_FILE, TrialContext

CACHE_TAG = "cache_key"
COPIED = ("method", "eval_protocol", "arch_hash", "noise")  # the original's tags


def identities(studies: dict[str, Any], trial_tags: dict[str, str], no_cache: bool
               ) -> tuple[dict[str, dict[str, Any]], bool, str | None]:
    """(arm -> identity, whether to look results up, a line for the console or None).
    `studies`: each arm's resolved `Study`; `trial_tags`: the study's provenance tags."""
    commit, dirty = trial_tags.get(COMMIT_TAG, ""), trial_tags.get(DIRTY_TAG, "")
    if not commit:
        return {}, False, "result cache: off (not run from a git checkout)"
    if dirty != "false":
        return {}, False, ("result cache: off (the checkout has uncommitted changes: results "
                           "are neither reused nor kept for reuse)")
    found = {}
    for name, study in studies.items():
        data = study.data
        sets = [data.train, *data.test, *(study.search.monitor or ())]
        found[name] = {"commit": commit, "packages": trial_tags.get(PACKAGE_SET_TAG, ""),
                       "protocol": protocol_hash(),
                       "data": {s: trial_tags.get(f"{DATA_TAG}{dataset_label(s)}", "")
                                for s in sets}}
    return found, not no_cache, ("result cache: off for lookups (--no-cache); the runs are "
                                 "kept for reuse" if no_cache else None)


@dataclass(frozen=True)
class ResultCache:
    """What the study searcher asks (plain data: it pickles with the searcher's state)."""

    context: TrialContext
    studies: dict[str, dict[str, Any]]  # arm -> the arm's plain study (its logged params)
    arm_identities: dict[str, dict[str, Any]] = field(default_factory=dict)
    lookups: bool = True
    linking: bool = True  # False: look up only (a probe before the study has a parent run)

    def identity(self, arm: str) -> dict[str, Any] | None:
        return self.arm_identities.get(arm)

    def tracker(self) -> Tracker:
        return Tracker(self.context.tracking_uri, spool_under=self.context.parent_run_id,
                       spool_root=self.context.spool_root)

    def lookup(self, config: dict[str, Any]) -> dict[str, Any] | None:
        """The result a finished run with the config's key reported, its `mlflow_run_id` the
        unit's new child run (whose artifacts are the original's: `artifact_run`)."""
        key = config.get("cache_key")
        if not (self.lookups and key):
            return None
        tracker = self.tracker()
        client = tracker.client
        query = (f"tags.{CACHE_TAG} = '{key}' and attributes.status = 'FINISHED' and "
                 f"tags.{CACHED_FROM} IS NULL")
        found = client.search_runs(all_experiment_ids(client), query,
                                   order_by=["attributes.start_time DESC"])
        # the same unit's own run first: units doing the same work (a tuned arm's samples
        # that differ only in retraining settings share their search) keep their own
        found.sort(key=lambda run: run.data.tags.get("unit") != config["unit"])
        for original in found:
            if original.data.tags.get("mlflow.parentRunId") == self.context.parent_run_id:
                continue  # this study's own: the in-study dedup links it
            result = unit_result(client, original.info.run_id)
            if result is None:
                continue
            linked = self.link(tracker, config, original) if self.linking else \
                original.info.run_id
            return {**result, "mlflow_run_id": linked}
        return None

    def link(self, tracker: Tracker, config: dict[str, Any], original) -> str:
        """The unit's child run in this study: FINISHED, the original's metrics, a link."""
        query = (f"tags.mlflow.parentRunId = '{self.context.parent_run_id}' and "
                 f"tags.{CACHE_TAG} = '{config['cache_key']}' and "
                 f"tags.unit = '{config['unit']}'")
        existing = tracker.client.search_runs([self.context.experiment_id], query)
        if existing:  # linked before an interruption
            return existing[0].info.run_id
        phase = config["phase"]
        source = original.data.tags
        tags = {"study": self.context.study, "arm": config["arm"], "phase": phase,
                **{key: source[key] for key in COPIED if key in source},
                **self.context.provenance, **config["labels"], CACHE_TAG: config["cache_key"],
                CACHED_FROM: original.info.run_id}
        if phase == "retrain":  # this study's search run of the unit (its tables link them)
            tags["search_run_id"] = config["candidate"].get("source", "")
        return linked_run(tracker, self.context, self.studies[config["arm"]], config, tags,
                          source.get("mlflow.runName"), dict(original.data.metrics))


def unit_result(client, run_id: str) -> dict[str, Any] | None:
    with tempfile.TemporaryDirectory() as folder:
        try:
            path = client.download_artifacts(run_id, RESULT_FILE, folder)
        except (MlflowException, OSError):
            return None
        return json.loads(Path(path).read_text())


def all_cached(plans, uri: str, arm_identities: dict[str, dict[str, Any]]) -> bool:
    """Would every unit of the study come from the cache? (A probe: links nothing.) Then the
    study needs no Ray cluster and no trial."""
    if not store_exists(uri):
        return False
    probe = ResultCache(TrialContext(uri, "", "", ""), {}, arm_identities, linking=False)
    return StudySearcher(plans, None, probe).suggest("probe") == StudySearcher.FINISHED


def retrained_runs(tracker: Tracker, context: TrialContext) -> int:
    query = (f"tags.mlflow.parentRunId = '{context.parent_run_id}' and tags.phase = 'retrain' "
             "and attributes.status = 'FINISHED'")
    runs = tracker.client.search_runs([context.experiment_id], filter_string=query,
                                      max_results=10000)
    return sum(1 for run in runs if run.data.tags.get("proxy") != "short")  # proxies: not


CACHED_LINE = "result cache: every unit was finished by an earlier study; no trial runs"


def linked_study(prepared, tracker: Tracker, context: TrialContext,
                 cache: ResultCache) -> int:
    """A study whose every unit is in the cache: its runs linked, its tables written; the
    count of its retrained runs."""
    linker = DedupLinker(context, {p.name: p.plain_study() for p in prepared.plans})
    status = "FAILED"
    try:
        if StudySearcher(prepared.plans, linker, cache).suggest("linked") != \
                StudySearcher.FINISHED:
            raise StudyError("the result cache changed while the study started; run it again")
        status = "FINISHED"
        return retrained_runs(tracker, context)
    finally:
        with tracker.unless_unreachable("results tables (rebuild them with `report`)"):
            write_report(tracker.client, context.parent_run_id)
        tracker.finish(context.parent_run_id, status)


def cached_trials(plans, uri: str, arm_identities: dict[str, dict[str, Any]],
                  parent_run_id: str = "") -> dict[str, dict[str, int]]:
    """arm -> {phase: trials an earlier study finished} (a probe: links nothing; the runs of
    study `parent_run_id`, a resumed one, are its own trials, not the cache's)."""
    hits: dict[str, dict[str, int]] = {}

    class Counting(ResultCache):
        def lookup(self, config):
            result = super().lookup(config)
            if result is not None:
                arm = hits.setdefault(config["arm"], {})
                arm[config["phase"]] = arm.get(config["phase"], 0) + 1
            return result

    probe = Counting(TrialContext(uri, "", parent_run_id, ""), {}, arm_identities,
                     linking=False)
    searcher = StudySearcher(plans, None, probe)
    index = 0
    while isinstance(searcher.suggest(f"probe{index}"), dict):  # a trial to run: its
        searcher.on_trial_complete(f"probe{index}", None, error=True)  # result is unknown
        index += 1
    return hits

