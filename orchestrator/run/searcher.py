"""The study searcher: one Ray Tune `Searcher` that feeds a whole study into one Tune experiment.

Tune asks it for the next trial whenever a slot is free (the experiment caps
trials in flight at what the cluster can run, so nothing queues behind an
early choice). A unit's retrain trials, one per degradation, are eligible the
moment its own search completes; no stage waits for another arm or seed. When
several trials compete for a slot, the one heading the longest remaining chain
of estimated work goes first (critical-path list scheduling: a search heads its
search + retrain chain, a retrain only itself; `ArmPlan.work` estimates), ties
in round robin over the arms, so every arm starts early.
Tuned arms keep their own `OptunaSearch`, told each sample's value when the
sample's work has ended: the mean over its seeds (and degradations) of the
retrained networks' validation metrics (`tune.objective: retrained`) or of the
search trials' last report (`supernet`), its val/ metrics those of the epoch whose
genotype it hands on (`orchestrator.run.ranking`). Retrain work that another unit already
does (same `dedup_key`) runs once; the waiting unit gets a linked MLflow run.
The whole state pickles, so `Tuner.restore` resumes the study where it stopped.
"""

from __future__ import annotations

import pickle
from collections import deque
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from ray.tune.search import Searcher

from orchestrator.run.ranking import carried_metrics
from orchestrator.study import (
    SEARCH,
    ArmPlan,
    make_searcher,
    proxy_configs,
    retrain_configs,
    sample_key,
    search_config,
)


@dataclass
class Sample:
    """One Optuna sample (or, untuned, the arm's seeds together) and its objective parts."""

    expected: int  # parts that end before the value is known
    values: list[list[float]] = field(default_factory=list)
    ended: int = 0
    told: bool = False


@dataclass
class Cursor:
    """Where an arm's unit emission stands."""

    sample: int = 0
    seed_index: int = 0
    tuned: dict[str, Any] = field(default_factory=dict)  # the current sample's values


class StudySearcher(Searcher):
    def __init__(self, arms: list[ArmPlan], linker=None, cache=None):
        super().__init__(metric=None, mode=None)
        self.arms = {arm.name: arm for arm in arms}
        self.order = [arm.name for arm in arms]
        self.specs = {arm.name: arm.study.tune for arm in arms}
        self.optuna = {arm.name: make_searcher(self.specs[arm.name], arm.index)
                       for arm in arms if arm.tuned}
        self.cursors = {arm.name: Cursor() for arm in arms}
        self.turn = 0  # round robin over arms
        self.ready: deque[dict[str, Any]] = deque()  # retrain configs waiting for a slot
        self.live: dict[str, dict[str, Any]] = {}  # trial id -> config
        self.samples: dict[str, Sample] = {}
        self.owners: set[str] = set()  # dedup keys of retrains queued or running
        self.done: dict[str, dict[str, Any]] = {}  # dedup key -> {run_id, metrics}
        self.waiting: dict[str, list[dict[str, Any]]] = {}  # dedup key -> dependents
        self.linker = linker  # creates the MLflow run of a deduplicated retrain
        self.cache = cache  # finished units of earlier studies (orchestrator.run.cache)
        # retrain.proxy: arm -> unit -> {"full": configs, "scores": [...], "open": count}
        self.proxied: dict[str, dict[str, dict[str, Any]]] = {}
        self.selected: set[str] = set()  # arms whose full retrainings are chosen

    # --- Tune's Searcher interface ------------------------------------------------------
    def set_search_properties(self, metric, mode, config, **spec) -> bool:
        return True

    def suggest(self, trial_id: str) -> dict[str, Any] | str | None:
        while True:
            config = self.next_config()
            if config is None:
                return Searcher.FINISHED if self.finished() else None
            if not self.cached(config):
                self.live[trial_id] = config
                return config

    def cached(self, config: dict[str, Any]) -> bool:
        """An earlier study finished this unit: take its result instead of a trial."""
        result = self.cache.lookup(config) if self.cache is not None else None
        if result is None:
            return False
        if config["phase"] == SEARCH:
            self.search_ended(config, result)
        else:
            self.retrain_ended(config, result)
        return True

    def identity(self, arm: str) -> dict[str, Any] | None:
        return self.cache.identity(arm) if self.cache is not None else None

    def on_trial_complete(self, trial_id: str, result: dict | None = None,
                          error: bool = False) -> None:
        config = self.live.pop(trial_id, None)
        if config is None:
            return
        ok = not error and result is not None
        if config["phase"] == SEARCH:
            self.search_ended(config, result if ok else None)
        else:
            self.retrain_ended(config, result if ok else None)

    def save(self, checkpoint_path: str) -> None:
        with open(checkpoint_path, "wb") as file:
            pickle.dump(self.__dict__, file)

    def restore(self, checkpoint_path: str) -> None:
        with open(checkpoint_path, "rb") as file:
            self.__dict__.update(pickle.load(file))

    # --- emission -------------------------------------------------------------------------
    def finished(self) -> bool:
        return not (self.live or self.ready or self.waiting
                    or any(self.available(name) for name in self.order))

    def available(self, name: str) -> bool:
        """The arm can start a unit now (Optuna arms: at most max_concurrent open samples)."""
        arm, cursor = self.arms[name], self.cursors[name]
        if cursor.sample >= arm.num_samples:
            return False
        if not arm.tuned or cursor.seed_index > 0:
            return True
        open_samples = sum(1 for key, s in self.samples.items()
                           if key.startswith(f"{name}/t") and not s.told)
        return open_samples < self.specs[name].max_concurrent

    def next_config(self) -> dict[str, Any] | None:
        """The ready retrain or the next search, whichever heads the longer chain of work."""
        retrain = max(self.ready, key=lambda c: self.arms[c["arm"]].work("retrain"),
                      default=None)  # the first of equals: max keeps the earliest
        arm = self.longest_available_arm()
        if retrain is not None and (arm is None or self.arms[retrain["arm"]].work("retrain")
                                    >= self.arms[arm].chain()):
            self.ready.remove(retrain)
            return retrain
        return self.next_search(arm) if arm is not None else None

    def longest_available_arm(self) -> str | None:
        """The available arm with the longest unit chain; ties in round robin."""
        rotated = [self.order[(self.turn + step) % len(self.order)]
                   for step in range(len(self.order))]
        candidates = [name for name in rotated if self.available(name)]
        return max(candidates, key=lambda name: self.arms[name].chain(), default=None)

    def next_search(self, name: str) -> dict[str, Any] | None:
        """The arm's next unit (a given genotype goes straight to its retrains)."""
        self.turn = (self.order.index(name) + 1) % len(self.order)
        config = self.emit(self.arms[name], self.cursors[name])
        if self.arms[name].genotype is None:
            return config
        self.search_ended(config, {"genotype": self.arms[name].genotype, "mlflow_run_id": ""})
        return self.next_config()

    def emit(self, arm: ArmPlan, cursor: Cursor) -> dict[str, Any]:
        if cursor.seed_index == 0:
            cursor.tuned = self.open_sample(arm, cursor.sample)
        config = search_config(arm, cursor.sample, arm.seeds[cursor.seed_index], cursor.tuned,
                               self.identity(arm.name))
        cursor.seed_index += 1
        if cursor.seed_index == len(arm.seeds):
            cursor.sample, cursor.seed_index = cursor.sample + 1, 0
        return config

    def open_sample(self, arm: ArmPlan, sample: int) -> dict[str, Any]:
        key = sample_key(arm, sample)
        per_seed = len(arm.noises) if self.scores_retrain(arm) else 1
        self.samples[key] = Sample(expected=len(arm.seeds) * per_seed)
        return self.optuna[arm.name].suggest(key) if arm.tuned else {}

    def scores_retrain(self, arm: ArmPlan) -> bool:
        return self.specs[arm.name].objective == "retrained" and arm.retrain

    # --- completion ---------------------------------------------------------------------
    def search_ended(self, config: dict[str, Any], result: dict | None) -> None:
        arm = self.arms[config["arm"]]
        genotype = (result or {}).get("genotype")
        if not self.scores_retrain(arm):  # scored by the epoch its genotype comes from
            self.record(config, carried_metrics(result) if genotype else None)
        if genotype is None:
            if self.scores_retrain(arm):  # its retrains will never run
                self.record(config, None, parts=len(arm.noises))
            return
        if arm.retrain:
            configs = retrain_configs(arm, config, genotype, result.get("mlflow_run_id", ""),
                                      self.identity(arm.name))
            if self.proxies(arm):  # the short retrainings first; the full ones wait
                steps = arm.study.retrain.epochs * arm.study.retrain.steps_per_epoch
                full = [{**c, "labels": {**c["labels"], "proxy": "full",
                                         "retrain_steps": steps}} for c in configs]
                self.proxied.setdefault(arm.name, {})[config["unit"]] = {
                    "full": full, "scores": [], "open": len(configs)}
                configs = proxy_configs(arm, configs, self.identity(arm.name))
            for retrain in configs:
                self.queue_retrain(retrain)
        self.select_full(arm)

    def proxies(self, arm: ArmPlan) -> bool:
        return arm.tuned and arm.study.retrain.proxy is not None

    def proxy_ended(self, config: dict[str, Any], result: dict | None) -> None:
        unit = self.proxied[config["arm"]][config["unit"]]
        unit["open"] -= 1
        objective = self.specs[config["arm"]].objective_list()[0]
        if result is not None and objective.metric in result:
            unit["scores"].append(float(result[objective.metric]))
        self.select_full(self.arms[config["arm"]])

    def select_full(self, arm: ArmPlan) -> None:
        """Once every candidate's short retraining has ended (no search of the arm left),
        the `keep` best by their mean validation score get the full retraining."""
        if not self.proxies(arm) or arm.name in self.selected or \
                self.cursors[arm.name].sample < arm.num_samples or \
                any(c["arm"] == arm.name and c["phase"] == SEARCH for c in self.live.values()):
            return
        units = self.proxied.get(arm.name, {})
        if any(unit["open"] for unit in units.values()):
            return
        self.selected.add(arm.name)
        objective = self.specs[arm.name].objective_list()[0]
        sign = 1.0 if objective.mode == "max" else -1.0
        scored = [(sign * float(np.mean(unit["scores"])), name)
                  for name, unit in units.items() if unit["scores"]]
        for _, name in sorted(scored, reverse=True)[:arm.study.retrain.proxy.keep]:
            for config in units[name]["full"]:
                self.queue_retrain(config)

    def queue_retrain(self, config: dict[str, Any]) -> None:
        key = config["dedup_key"]
        if key in self.done:
            self.link(config, self.done[key])
        elif key in self.owners:
            self.waiting.setdefault(key, []).append(config)
        else:
            self.owners.add(key)
            self.ready.append(config)

    def retrain_ended(self, config: dict[str, Any], result: dict | None) -> None:
        self.retrain_done(config, result)
        if config["labels"].get("proxy") == "short":
            self.proxy_ended(config, result)

    def retrain_done(self, config: dict[str, Any], result: dict | None) -> None:
        key = config["dedup_key"]
        self.owners.discard(key)
        dependents = self.waiting.pop(key, [])
        if result is None:
            self.record(config, None)
            if dependents:  # another unit wanted the same work: it tries again
                self.owners.add(key)
                self.ready.append(dependents[0])
                if dependents[1:]:
                    self.waiting[key] = dependents[1:]
            return
        self.done[key] = {"run_id": result.get("mlflow_run_id", ""), "metrics": result}
        self.record(config, result)
        for dependent in dependents:
            self.link(dependent, self.done[key])

    def link(self, config: dict[str, Any], source: dict[str, Any]) -> None:
        if self.linker is not None:
            self.linker(config, source["run_id"])
        self.record(config, source["metrics"])
        if config["labels"].get("proxy") == "short":
            self.proxy_ended(config, source["metrics"])

    def record(self, config: dict[str, Any], result: dict | None, parts: int = 1) -> None:
        """A part of the config's sample ended; tell Optuna the mean once every part has."""
        arm, key = self.arms[config["arm"]], config["sample"]
        sample = self.samples[key]
        metrics = [o.metric for o in self.specs[arm.name].objective_list()]
        if result is not None and all(m in result for m in metrics):
            sample.values.append([float(result[m]) for m in metrics])
        sample.ended += parts
        if sample.ended >= sample.expected and not sample.told:
            sample.told = True
            if arm.tuned:
                self.tell(arm, key, metrics, sample.values)

    def tell(self, arm: ArmPlan, key: str, metrics: list[str], values: list[list[float]]):
        searcher = self.optuna[arm.name]
        if not values:
            searcher.on_trial_complete(key, None, error=True)
            return
        means = np.mean(np.array(values), axis=0)
        searcher.on_trial_complete(key, {m: float(v) for m, v in zip(metrics, means)})
