"""A study from start to end: arms -> one Tune experiment (search, derive, retrain) -> tables.

The parent MLflow run of the invocation is created first and stays open while
trials attach their child runs; its id is kept in the storage folder so that
`--resume` reopens the same parent and Tune restores the study's experiment.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass, replace
from typing import Any

import ray
import yaml

from orchestrator.results import NOTE_TAG, write_report
from orchestrator.run.cache import (
    CACHED_LINE,
    ResultCache,
    all_cached,
    cached_trials,
    identities,
    linked_study,
    retrained_runs,
)
from orchestrator.run.console import results_location, results_text, start_lines
from orchestrator.run.dedup import DedupLinker
from orchestrator.run.experiment import fit, make_trainable, make_tuner
from orchestrator.run.memory import checked_memory, cluster_limit
from orchestrator.run.note import study_note
from orchestrator.run.preparing import (
    PreparedArms,
    ResourceError,
    RunOptions,
    TrialsFailed,
    prepare_arms,
    resolve_uri,
)
from orchestrator.run.provenance import NONE, Provenance, study_provenance
from orchestrator.run.signals import StopSignals, StudyStopped, stop_signals
from orchestrator.run.storage import (
    check_storage,
    join,
    read_text,
    spool_location,
    study_location,
    write_text,
)
from orchestrator.study import ArmPlan, StudyError
from studyspec.schema import Study
from trainables.data import resolved_roots
from trainables.loops import protocol_hash
from trainables.tracking import (
    Tracker,
    invocation_tags,
    logged_params,
    prepare_local_store,
    varying_keys,
)
from trainables.tune import Loops, TrialContext

INVOCATION_FILE = "invocation.json"


def open_parent(tracker: Tracker, study: Study, folder: str, options: RunOptions,
                provenance: Provenance = NONE) -> tuple[str, str]:
    """(experiment id, parent run id), reopening the saved parent run on resume."""
    experiment_id = tracker.experiment_id(study.tracking.experiment or study.name)
    saved = join(folder, INVOCATION_FILE)  # folder: a path or a URI (orchestrator.run.storage)
    identity = study.model_dump_json() + json.dumps(sorted(options.arms))
    fingerprint = hashlib.sha256(identity.encode()).hexdigest()[:16]
    text = read_text(saved) if options.resume else None
    if text is not None:
        invocation = json.loads(text)
        if invocation.get("study_hash") != fingerprint:
            raise StudyError(f"{saved}: the study differs from the interrupted one; resume "
                             "with the same file, --profile and --set values")
        tracker.reopen(invocation["parent_run_id"])
        return experiment_id, invocation["parent_run_id"]
    tags = {"study": study.name, "phase": "study", "method": study.search_space.name,
            "eval_protocol": protocol_hash(), **table_tags(study),
            **invocation_tags(options.command), **provenance.trial_tags,
            **provenance.parent_tags}
    parent_id = tracker.start_run(experiment_id, study.name, tags)
    for path, text in provenance.parent_files.items():
        tracker.log_text(parent_id, text, path)
    write_text(saved, json.dumps({"parent_run_id": parent_id, "experiment_id": experiment_id,
                                  "study_hash": fingerprint}))
    resolved = study.model_dump(mode="json")
    tracker.log_params(parent_id, logged_params(resolved, "study"))
    tracker.log_text(parent_id, yaml.safe_dump(resolved, sort_keys=False), "study.yaml")
    return experiment_id, parent_id


def say(options: RunOptions, lines: list[str]) -> None:
    """Lines on the console unless --verbose 0."""
    if options.verbose:
        print("\n".join(lines), flush=True)


def quiet_tune(verbose: int) -> None:
    """Below --verbose 2, Tune's newer output engine is off: it prints its experiment box
    and result folder at any verbosity."""
    os.environ["RAY_AIR_NEW_OUTPUT"] = "1" if verbose >= 2 else "0"


def start_ray(address: str | None) -> None:
    if ray.is_initialized():
        return
    os.environ.setdefault("RAY_ENABLE_UV_RUN_RUNTIME_ENV", "0")
    # a checkpoint per epoch is the point: do not warn about the snapshots it triggers
    os.environ.setdefault("TUNE_WARN_EXCESSIVE_EXPERIMENT_CHECKPOINT_SYNC_THRESHOLD_S", "0")
    if address:
        if address.split(":")[0] in ("127.0.0.1", "localhost"):
            keep_on_loopback()  # a test cluster started with --node-ip-address 127.0.0.1
        ray.init(address=address, log_to_driver=False)
        return
    keep_on_loopback()
    # address="local": a bare ray.init() reuses a stale ray_current_cluster file and fails
    ray.init(address="local", include_dashboard=False, log_to_driver=False,
             _node_ip_address=LOOPBACK)


LOOPBACK = "127.0.0.1"


def keep_on_loopback() -> None:
    """A local cluster binds and advertises 127.0.0.1 only.

    Ray 2.60 replaces a loopback node IP by the machine's external address unless
    it believes it is not a cluster; this flag (read by the driver at call time and
    by the processes ray.init spawns, through the environment) makes it keep 127.0.0.1.
    """
    from ray._private import ray_constants

    os.environ["RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"] = "0"
    ray_constants.ENABLE_RAY_CLUSTER = False


def table_tags(study: Study) -> dict[str, str]:
    """What the tables need from the parent run: the groups in order, the objectives."""
    groups = [{"name": name, "title": spec.title or name} for name, spec in study.groups.items()]
    tags = {"groups": json.dumps(groups)}
    if study.tune.objectives:
        tags["objectives"] = json.dumps([o.model_dump() for o in study.tune.objectives])
    return tags


def check_resources(studies: dict[str, Study], available: dict[str, float]) -> None:
    """Fail before logging anything when a trial could never be scheduled."""
    for name, study in studies.items():
        for phase in ("search", "retrain"):
            wanted = getattr(study.resources, phase)
            for kind, amount in (("cpu", wanted.cpu), ("gpu", wanted.gpu)):
                have = available.get(kind.upper(), 0)
                if amount > have:
                    raise ResourceError(
                        f"arm '{name}': resources.{phase}.{kind}: {amount:g} per trial "
                        f"but the Ray cluster has {have:g} (try --set resources.{phase}.{kind}="
                        f"{have:g})")


@dataclass(frozen=True)
class StudyOutcome:
    finished: int  # retrain trials that finished
    parent_run_id: str
    results: Any  # Tune's ResultGrid of every trial
    results_at: str = ""  # the parent run's results folder (a path, or an artifact URI)


def trial_capacity(studies: dict[str, Study], available: dict[str, float]) -> int:
    """How many trials the cluster runs at once (the smallest per-phase request decides):
    Tune holds no more trials than that in flight, so the study searcher, not a queue of
    early picks, decides what starts when a slot frees."""
    fits = []
    for study in studies.values():
        for wanted in (study.resources.search, study.resources.retrain):
            counts = [available.get("CPU", 0) / wanted.cpu]
            if wanted.gpu > 0:
                counts.append(available.get("GPU", 0) / wanted.gpu)
            fits.append(int(min(counts) + 1e-9))
    return max(1, max(fits, default=1))


def run_study(study: Study, options: RunOptions, loops: Loops | None = None) -> StudyOutcome:
    """Run every arm as one Tune experiment and log the tables to the parent run.
    `loops` replaces the training loops (the scheduling benchmark's stand-ins). SIGTERM
    stops it as Ctrl-C does (`orchestrator.run.signals`)."""
    with stop_signals() as signals:
        return signalled_study(study, options, loops, signals)


def signalled_study(study: Study, options: RunOptions, loops: Loops | None,
                    signals: StopSignals) -> StudyOutcome:
    uri = resolve_uri(study, options)
    prepared = prepare_arms(study, options.source, options.arms, uri)
    provenance = study_provenance(prepared.studies.values(), options.source)
    arm_ids, lookups, line = identities(prepared.studies, provenance.trial_tags,
                                        options.no_cache)
    # every unit finished by an earlier study: no cluster, no trial, only the links
    need_ray = not (lookups and not options.resume and loops is None
                    and all_cached(prepared.plans, uri, arm_ids))
    started = need_ray and not ray.is_initialized()
    if need_ray:
        start_ray(options.address)
        if signals.active:
            signals.install()  # over the one ray.init installed
    try:
        if need_ray:
            available = ray.cluster_resources()
            check_resources(prepared.studies, available)
            checked_memory(prepared.plans, cluster_limit())  # before any trial
            check_storage(options.storage)  # a multi-node cluster needs storage all nodes see
        prepare_local_store(uri)
        folder = study_location(options.storage, study.name)
        spool = spool_location(folder)
        tracker = Tracker(uri, spool_root=spool)
        experiment_id, parent_id = open_parent(tracker, study, folder, options, provenance)
        context = TrialContext(uri, experiment_id, parent_id, study.name,
                               param_keys=varying_keys(p.plain_study() for p in prepared.plans),
                               provenance=provenance.trial_tags, spool_root=spool)
        roots = {name: root for resolved in prepared.studies.values()
                 for name, root in resolved_roots(resolved).items()}
        tracker.set_tags(parent_id, {f"data_root.{name}": root for name, root in roots.items()})
        tracker.set_tags(parent_id, {NOTE_TAG: study_note(study, options.source, prepared.plans)})
        cache = ResultCache(context, {p.name: p.plain_study() for p in prepared.plans}, arm_ids,
                            lookups)
        say(options, start_lines(study.name, uri, folder, parent_id, prepared.plans)
            + ([line] if line else []) + ([] if need_ray else [CACHED_LINE]))
        if need_ray:
            in_flight = min(study.tune.max_concurrent,
                            trial_capacity(prepared.studies, available))
            quiet_tune(options.verbose)
            outcome = run_experiment(prepared, options, tracker, context, folder, loops,
                                     in_flight, study.tune.max_failures, signals, cache)
        else:
            outcome = StudyOutcome(linked_study(prepared, tracker, context, cache), parent_id, [])
        with tracker.unless_unreachable("the results tables' location"):
            say(options, [results_text(tracker.client, parent_id)])
            outcome = replace(outcome, results_at=results_location(tracker.client, parent_id))
        return outcome
    finally:
        if started and ray.is_initialized():
            ray.shutdown()


def run_experiment(prepared: PreparedArms, options: RunOptions, tracker: Tracker,
                   context: TrialContext, folder: str, loops: Loops | None,
                   in_flight: int, max_failures: int = 0,
                   signals: StopSignals | None = None,
                   cache: ResultCache | None = None) -> StudyOutcome:
    """Fit the experiment; a stop signal (`orchestrator.run.signals`) ends it with its state
    saved, the parent run and the runs of the trials it stopped marked KILLED."""
    trainable = make_trainable(prepared.plans, prepared.data, context, loops)
    signals = signals or StopSignals()
    cached = cached_trials(prepared.plans, context.tracking_uri, cache.arm_identities,
                           context.parent_run_id) \
        if cache is not None and cache.lookups and options.verbose else {}
    status = "FAILED"
    try:
        with signals.experiment():
            results = fit(trainable, folder, options.resume, lambda: make_tuner(
                trainable, prepared.plans, in_flight, folder, options.verbose,
                DedupLinker(context, {p.name: p.plain_study() for p in prepared.plans}),
                max_failures, cache, cached))
        if signals.received is not None:
            raise StudyStopped(context.study, signals.received)
        finished = check_outcome(results, prepared.plans)
        with tracker.unless_unreachable("the count of retrained networks"):
            finished = retrained_runs(tracker, context)  # cached and linked ones too
        status = "FINISHED"
        return StudyOutcome(finished, context.parent_run_id, results)
    except (KeyboardInterrupt, StudyStopped):
        status = "KILLED"
        with tracker.unless_unreachable("the stopped trials' status"):
            mark_stopped_trials(tracker, context)
        raise
    finally:  # what finished is kept, whatever happened later
        with tracker.unless_unreachable("results tables (rebuild them with `report`)"):
            write_report(tracker.client, context.parent_run_id)
        tracker.finish(context.parent_run_id, status)  # sends, or reports, what is queued


def mark_stopped_trials(tracker: Tracker, context: TrialContext) -> None:
    """The trial runs still RUNNING when the study stopped: KILLED (a resumed trial reopens
    its run)."""
    query = (f"tags.mlflow.parentRunId = '{context.parent_run_id}' and "
             "attributes.status = 'RUNNING'")
    for run in tracker.client.search_runs([context.experiment_id], filter_string=query):
        tracker.end(run.info.run_id, "KILLED")


def check_outcome(results, plans: list[ArmPlan]) -> int:
    """Finished retrain trials; raises when every search, or every retrain, failed."""
    by_phase: dict[str, list] = {"search": [], "retrain": []}
    for result in results:
        by_phase[(result.config or {}).get("phase", "search")].append(result)
    for phase, expected in (("search", any(p.genotype is None for p in plans)),
                            ("retrain", any(p.retrain for p in plans))):
        trials = by_phase[phase]
        if expected and trials and all(r.error is not None for r in trials):
            first = str(trials[0].error).strip().splitlines()[-1]
            raise TrialsFailed(f"every {phase} trial failed (first error: {first})")
    return sum(1 for r in by_phase["retrain"] if r.error is None)
