"""The study searcher, driven by hand (no Ray cluster): what it emits, in which order, what
Optuna is told and when, de-duplicated retraining, and its saved state."""

import functools
import itertools
import json

import optuna
import pytest
import torch
from ray.tune.search import Searcher

from orchestrator.run.searcher import StudySearcher
from orchestrator.study.arms import checked_arms
from orchestrator.study.plan import ArmPlan, arm_plan
from orchestrator.study.reading import validate
from searchspaces.genotype import Genotype
from searchspaces.registry import get_space

OPTIONS = {"num_layers": 2, "num_nodes": 2, "width": 4, "stem_channels": 8}
TWO_NOISES = {"noise": [{"sigma": 15}, {"sigma": 25}]}
WIDTH = {"search_space.options.width": {"type": "categorical", "choices": [4, 6]}}
State = optuna.trial.TrialState


@functools.cache
def genotype(index: int = 0) -> str:
    """A distinct hinas genotype per index (random architecture weights, derived)."""
    with torch.random.fork_rng(devices=[]), torch.no_grad():  # other tests' RNG untouched
        torch.manual_seed(index)
        supernet = get_space("hinas").build_supernet(OPTIONS, 1)
        for parameter in supernet.arch_parameters():
            parameter.normal_()
        return supernet.derive().to_json()


def plans(source: str = "study", **sections) -> list[ArmPlan]:
    raw = {"name": "t", "data": {"patch_size": 32},
           "search_space": {"name": "hinas", "options": OPTIONS}, **sections}
    arms = checked_arms(validate(raw, source), source)
    return [arm_plan(arm, index, study, source) for index, (arm, study) in enumerate(arms)]


def named(*arms: dict) -> dict:
    return {"named": list(arms)}


class Driver:
    """Tune's side: fresh trial ids, the configs in flight by unit and phase."""

    def __init__(self, searcher: StudySearcher):
        self.searcher, self.ids = searcher, itertools.count()
        self.live: dict[str, dict] = {}

    def suggest(self):
        trial_id = f"trial{next(self.ids)}"
        config = self.searcher.suggest(trial_id)
        if isinstance(config, dict):
            self.live[trial_id] = config
        return config

    def drain(self) -> list[dict]:
        """Every config the searcher emits before it has to wait (or is finished)."""
        configs = []
        while isinstance(config := self.suggest(), dict):
            configs.append(config)
        return configs

    def trial_of(self, unit: str, phase: str, sigma: float | None = None) -> str:
        return next(t for t, c in self.live.items() if c["unit"] == unit and c["phase"] == phase
                    and (sigma is None or c["noise"]["sigma"] == sigma))

    def complete(self, unit: str, phase: str, result: dict | None, sigma=None, error=False):
        trial_id = self.trial_of(unit, phase, sigma)
        del self.live[trial_id]
        self.searcher.on_trial_complete(trial_id, result, error=error)


def searched(index: int = 0, run: str = "search-run", **metrics) -> dict:
    return {"genotype": genotype(index), "mlflow_run_id": run, **metrics}


def units(configs: list[dict]) -> list[tuple[str, str]]:
    return [(c["unit"], c["phase"]) for c in configs]


def test_equal_arms_go_round_robin_and_a_units_retrains_are_ready_at_its_search_end():
    driver = Driver(StudySearcher(plans(seeds=[0, 1], retrain=TWO_NOISES,
                                        arms=named({"name": "a"}, {"name": "b"}))))
    first = [driver.suggest() for _ in range(3)]
    assert units(first) == [("a/s0", "search"), ("b/s0", "search"), ("a/s1", "search")]
    driver.complete("b/s0", "search", searched(1, run="run-b0"))
    # b/s1's search heads a longer chain of work than b/s0's retrains: it goes first
    assert units([driver.suggest()]) == [("b/s1", "search")]
    retrains = [driver.suggest(), driver.suggest()]
    assert units(retrains) == [("b/s0", "retrain")] * 2
    assert [c["noise"]["sigma"] for c in retrains] == [15, 25]
    assert {c["candidate"]["source"] for c in retrains} == {"run-b0"}
    assert {c["candidate"]["genotype"] for c in retrains} == {genotype(1)}
    assert driver.suggest() is None  # everything else waits for a search to end


def test_the_longest_remaining_chain_of_work_goes_first():
    driver = Driver(StudySearcher(plans(
        seeds=[0, 1], arms=named({"name": "short"},
                                 {"name": "long", "set": {"search.epochs": 300}},
                                 {"name": "heavy", "set": {"retrain.epochs": 500}}))))
    first = [driver.suggest() for _ in range(4)]
    # chains: heavy (100 + 500 epochs' work) > long (300 + 10) > short (100 + 10)
    assert units(first) == [("heavy/s0", "search"), ("heavy/s1", "search"),
                            ("long/s0", "search"), ("long/s1", "search")]
    driver.complete("heavy/s0", "search", searched(0))
    # heavy's retrain (500 epochs) outweighs short's whole chain (110): it goes first
    assert units([driver.suggest(), driver.suggest()]) == [("heavy/s0", "retrain"),
                                                           ("short/s0", "search")]


def test_suggest_waits_while_trials_run_and_finishes_when_all_ended():
    driver = Driver(StudySearcher(plans()))
    assert units([driver.suggest()]) == [("default/s0", "search")]
    assert driver.suggest() is None  # the search runs: nothing to start
    driver.complete("default/s0", "search", searched())
    assert units([driver.suggest()]) == [("default/s0", "retrain")]
    assert driver.suggest() is None
    driver.complete("default/s0", "retrain", {"val/psnr": 30.0, "mlflow_run_id": "r"})
    assert driver.suggest() == Searcher.FINISHED


def test_failed_search_retrains_nothing_and_the_study_finishes():
    driver = Driver(StudySearcher(plans()))
    driver.suggest()
    driver.complete("default/s0", "search", None, error=True)
    assert driver.suggest() == Searcher.FINISHED


def test_genotype_arm_retrains_at_every_seed_and_noise_without_search(tmp_path, monkeypatch):
    (tmp_path / "given.json").write_text(genotype(2))
    (tmp_path / "elsewhere").mkdir()
    monkeypatch.chdir(tmp_path / "elsewhere")  # the path is relative to the study file
    arms = plans(str(tmp_path / "study.yaml"), retrain=TWO_NOISES,
                 arms=named({"name": "given", "genotype": "given.json", "seeds": [3, 4]}))
    driver = Driver(StudySearcher(arms))
    configs = driver.drain()
    assert {c["phase"] for c in configs} == {"retrain"}
    assert sorted((c["seed"], c["noise"]["sigma"]) for c in configs) == [
        (3, 15), (3, 25), (4, 15), (4, 25)]
    hashes = {Genotype.from_json(c["candidate"]["genotype"]).arch_hash() for c in configs}
    assert hashes == {Genotype.from_json(genotype(2)).arch_hash()}
    assert driver.suggest() is None
    for trial_id in list(driver.live):
        driver.searcher.on_trial_complete(trial_id, {"val/psnr": 30.0, "mlflow_run_id": "r"})
    assert driver.suggest() == Searcher.FINISHED


def test_search_only_arm_emits_no_retrain():
    driver = Driver(StudySearcher(plans(arms=named({"name": "curves", "retrain": False,
                                                     "seeds": [0, 1]}))))
    assert units(driver.drain()) == [("curves/s0", "search"), ("curves/s1", "search")]
    driver.complete("curves/s0", "search", searched(0))
    driver.complete("curves/s1", "search", searched(1))
    assert driver.suggest() == Searcher.FINISHED


def test_every_seed_of_every_arm_is_searched_arm_seeds_override_the_studys():
    arms = plans(seeds=[0, 1], arms=named({"name": "a"}, {"name": "b", "seeds": [7]}))
    configs = Driver(StudySearcher(arms)).drain()
    assert units(configs) == [("a/s0", "search"), ("b/s7", "search"), ("a/s1", "search")]
    assert [c["seed"] for c in configs] == [0, 7, 1]


def dedup_driver(linker, *extra_arms: dict) -> Driver:
    arms = named({"name": "a"}, {"name": "b", "set": {"search.epochs": 50}}, *extra_arms)
    return Driver(StudySearcher(plans(arms=arms), linker=linker))


def test_same_retrain_work_runs_once_and_the_waiting_units_are_linked():
    calls = []
    driver = dedup_driver(lambda config, run_id: calls.append((config["unit"], run_id)),
                          {"name": "c"})
    assert len(driver.drain()) == 3
    driver.complete("a/s0", "search", searched(0))
    driver.complete("b/s0", "search", searched(0))  # search settings differ, retraining not
    owner = driver.suggest()
    assert units([owner]) == [("a/s0", "retrain")]
    assert driver.suggest() is None  # b's retrain waits for a's
    driver.complete("a/s0", "retrain", {"val/psnr": 30.0, "mlflow_run_id": "run-a"})
    assert calls == [("b/s0", "run-a")]
    driver.complete("c/s0", "search", searched(0))  # the work is done: linked at once
    assert calls == [("b/s0", "run-a"), ("c/s0", "run-a")]
    assert driver.suggest() == Searcher.FINISHED


def test_failed_retrain_hands_the_work_to_the_waiting_unit():
    calls = []
    driver = dedup_driver(lambda config, run_id: calls.append(config["unit"]))
    driver.drain()
    driver.complete("a/s0", "search", searched(0))
    driver.complete("b/s0", "search", searched(0))
    owner = driver.suggest()
    assert driver.suggest() is None  # b's retrain waits for a's
    driver.complete("a/s0", "retrain", None, error=True)
    heir = driver.suggest()
    assert units([heir]) == [("b/s0", "retrain")]
    assert heir["dedup_key"] == owner["dedup_key"]
    driver.complete("b/s0", "retrain", {"val/psnr": 30.0, "mlflow_run_id": "run-b"})
    assert calls == [] and driver.suggest() == Searcher.FINISHED


def test_other_seed_or_retrain_settings_are_not_deduplicated():
    calls = []
    arms = named({"name": "a", "seeds": [0, 1]},
                 {"name": "b", "set": {"retrain.epochs": 3}, "seeds": [0]})
    driver = Driver(StudySearcher(plans(arms=arms), linker=lambda *args: calls.append(args)))
    driver.drain()
    for unit in ("a/s0", "b/s0", "a/s1"):
        driver.complete(unit, "search", searched(0))
    assert sorted(units(driver.drain())) == [("a/s0", "retrain"), ("a/s1", "retrain"),
                                             ("b/s0", "retrain")]
    assert calls == []


def tuned(**tune) -> dict:
    return {"space": WIDTH, **tune}


def trials(driver: Driver, arm: str = "default") -> list:
    return driver.searcher.optuna[arm]._ot_study.trials


def test_start_from_point_is_the_first_sample():
    space = {**WIDTH, "search.loss.ssim_lambda": {"type": "float", "low": 0.0, "high": 1.0}}
    start = {"search_space.options.width": 6, "search.loss.ssim_lambda": 0.25}
    driver = Driver(StudySearcher(plans(tune={"space": space, "num_samples": 2,
                                              "start_from": [start]})))
    first = driver.suggest()
    assert first["unit"] == "default/t0/s0" and first["tuned"] == start
    assert first["labels"]["tuned"] == "ssim_lambda=0.25,width=6"
    assert driver.suggest()["tuned"] != start


def test_retrained_objective_is_the_mean_told_once_every_retrain_of_the_sample_ended():
    driver = Driver(StudySearcher(plans(seeds=[0, 1], retrain=TWO_NOISES, tune=tuned())))
    assert units(driver.drain()) == [("default/t0/s0", "search"), ("default/t0/s1", "search")]
    driver.complete("default/t0/s0", "search", searched(0, **{"val/psnr": 99.0}))
    driver.complete("default/t0/s1", "search", searched(1, **{"val/psnr": 99.0}))
    assert len(driver.drain()) == 4
    psnrs = {("default/t0/s0", 15): 30.0, ("default/t0/s0", 25): 28.0,
             ("default/t0/s1", 15): 32.0, ("default/t0/s1", 25): 27.0}
    for (unit, sigma), psnr in list(psnrs.items())[:3]:
        driver.complete(unit, "retrain", {"val/psnr": psnr, "val/score": 0.5,
                                          "mlflow_run_id": "r"}, sigma=sigma)
        assert trials(driver)[0].state == State.RUNNING
    driver.complete("default/t0/s1", "retrain", {"val/psnr": 27.0, "mlflow_run_id": "r"},
                    sigma=25)
    assert trials(driver)[0].state == State.COMPLETE
    assert trials(driver)[0].value == pytest.approx(sum(psnrs.values()) / 4)


def test_supernet_objective_is_told_when_the_search_completes():
    driver = Driver(StudySearcher(plans(tune=tuned(objective="supernet"))))
    driver.suggest()
    driver.complete("default/t0/s0", "search", searched(0, **{"val/score": 0.7}))
    assert trials(driver)[0].state == State.COMPLETE and trials(driver)[0].value == 0.7
    assert units([driver.suggest()]) == [("default/t0/s0", "retrain")]  # still retrained


def test_multi_objective_sample_gets_one_value_per_objective():
    objectives = [{"metric": "val/psnr"}, {"metric": "cost/params", "mode": "min"}]
    driver = Driver(StudySearcher(plans(tune=tuned(objectives=objectives))))
    driver.suggest()
    driver.complete("default/t0/s0", "search", searched(0))
    driver.suggest()
    driver.complete("default/t0/s0", "retrain",
                    {"val/psnr": 30.0, "cost/params": 1200, "mlflow_run_id": "r"})
    assert trials(driver)[0].values == [30.0, 1200.0]


def test_failed_search_fails_the_sample_and_frees_its_slot():
    driver = Driver(StudySearcher(plans(retrain=TWO_NOISES,
                                        tune=tuned(num_samples=2, max_concurrent=1))))
    assert units(driver.drain()) == [("default/t0/s0", "search")]  # one open sample at most
    driver.complete("default/t0/s0", "search", None, error=True)
    assert trials(driver)[0].state == State.FAIL
    assert units([driver.suggest()]) == [("default/t1/s0", "search")]  # no retrain of t0


def scripted_steps(driver: Driver) -> list[dict]:
    """Complete whatever runs (searches with a genotype, retrains with a PSNR) and collect
    what the searcher emits next, until it has finished."""
    emitted = []
    for step in itertools.count():
        emitted += driver.drain()
        if not driver.live:
            return emitted
        trial_id = sorted(driver.live)[0]
        config = driver.live.pop(trial_id)
        result = (searched(step % 3) if config["phase"] == "search"
                  else {"val/psnr": 20.0 + step, "mlflow_run_id": f"r{step}"})
        driver.searcher.on_trial_complete(trial_id, result)


def test_saved_state_restores_and_continues_with_the_same_configs(tmp_path):
    def make() -> StudySearcher:
        return StudySearcher(plans(seeds=[0, 1], retrain=TWO_NOISES, arms=named(
            {"name": "plain"}, {"name": "tuned", "set": {"tune.space": WIDTH,
                                                         "tune.num_samples": 3}})))

    driver = Driver(make())
    driver.drain()
    driver.complete("plain/s0", "search", searched(0))
    driver.suggest()
    driver.searcher.save(str(tmp_path / "searcher.pkl"))
    restored = Driver(make())
    restored.searcher.restore(str(tmp_path / "searcher.pkl"))
    restored.live = dict(driver.live)  # the trials Tune resumes
    driver.ids = itertools.count(100)
    restored.ids = itertools.count(100)
    expected = scripted_steps(driver)
    assert len(expected) > 10 and driver.suggest() == Searcher.FINISHED
    assert json.dumps(scripted_steps(restored)) == json.dumps(expected)
    assert restored.suggest() == Searcher.FINISHED
    assert [t.params for t in trials(restored, "tuned")] == [
        t.params for t in trials(driver, "tuned")]
    assert [t.value for t in trials(restored, "tuned")] == [
        t.value for t in trials(driver, "tuned")]


def test_search_config_labels_name_the_arm_unit_and_seed():
    config = StudySearcher(plans(arms=named({"name": "w", "seeds": [1]},
                                            {"name": "x", "seeds": [4]}))).suggest("t")
    assert config["labels"] == {"group": "", "arm_index": 0, "seed": 1, "unit": "w/s1",
                                "tuned": ""}


def test_asha_applies_per_arm_to_search_trials_only():
    from types import SimpleNamespace

    from ray.tune.schedulers import TrialScheduler

    from orchestrator.run.scheduler import PerArmASHA

    asha = {"type": "asha", "grace_period": 1, "reduction_factor": 2}
    scheduler = PerArmASHA.for_arms(plans(arms=named(
        {"name": "tuned", "set": {"tune.scheduler": asha}}, {"name": "plain"})))
    assert set(scheduler.ashas) == {"tuned"}
    assert PerArmASHA.for_arms(plans()) is None

    def trial(arm, phase):
        return SimpleNamespace(config={"arm": arm, "phase": phase})

    assert scheduler.route(trial("tuned", "search")) is scheduler.ashas["tuned"]
    assert scheduler.route(trial("tuned", "retrain")) is None
    assert scheduler.route(trial("plain", "search")) is None
    result = {"training_iteration": 1, "val/score": 0.1}
    assert scheduler.on_trial_result(None, trial("plain", "search"),
                                     result) == TrialScheduler.CONTINUE
