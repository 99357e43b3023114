"""Run names and params a person reads in MLflow (no Ray, no MLflow)."""

import pytest

from orchestrator.run.preparing import plan_arms
from orchestrator.study.reading import validate
from searchspaces.genotype import Genotype
from studyspec.dotted import with_overrides
from trainables.tracking.display import (
    FILTER_KEYS,
    logged_params,
    run_name,
    selected,
    short_arm,
    short_value,
    varying_keys,
    with_arch,
)

OFFICIAL = "studies/genotypes/hinas-official-3c4n.json"
TWO_ARMS = {
    "name": "two", "data": {"train": "embedded", "test": ["embedded"], "patch_size": 24},
    "search_space": {"name": "hinas", "options": {"num_layers": 2, "num_nodes": 2, "width": 4}},
    "search": {"epochs": 2, "warmup_epochs": 1},
    "retrain": {"epochs": 1, "scale_options": {"width": 2}},
    "tune": {"num_samples": 2, "space": {
        "search.loss.ssim_lambda": {"type": "float", "low": 0.0, "high": 1.0}}},
    "arms": {"named": [{"name": "plain"}, {"name": "fast", "set": {
        "search.weight_optimizer.lr": 0.05}}]},
}


@pytest.mark.parametrize(("value", "text"), [(0.3121, ".31"), (0.001, ".001"), (1e-5, "1e-5"),
                                             (25.0, "25"), (-0.05, "-.05"), (6, "6"),
                                             (True, "True"), ("sep 3x3", "sep3x3")])
def test_short_values(value, text):
    assert short_value(value) == text


def test_names_are_arm_seed_phase_tuned_values_and_arch_prefix():
    config = {"arm": "default", "seed": 0, "tuned": {"search_space.options.width": 6,
                                                     "search.loss.ssim_lambda": 0.3121}}
    assert run_name(config, "search", {}) == "default/s0/search/sl=.31,w=6"
    assert with_arch("default/s0/search/sl=.31,w=6", "3fa2c1d0e9") == \
        "default/s0/search/sl=.31,w=6/3fa2c1"
    genotype = Genotype.load(OFFICIAL)
    retrain = {**config, "noise": {"type": "awgn", "sigma": 15},
               "candidate": {"genotype": genotype.to_json(), "source": "r"}}
    name = run_name(retrain, "retrain", {"retrain": {"noise": None}})
    assert name == f"default/s0/retrain/sl=.31,w=6/{genotype.arch_hash()[:6]}"
    assert with_arch(name, genotype.arch_hash()) == name and len(name) <= 40
    several = {"retrain": {"noise": [{"sigma": 15}, {"sigma": 25}]}}
    assert run_name({**retrain, "tuned": {}}, "retrain", several).startswith(
        "default/s0/retrain-sigma15/")


def test_grid_arm_names_get_short_keys_and_colliding_initials_keep_names():
    assert short_arm("superkernel=joint+num_subnets=3+backbone=resunet") == \
        "s=joint+ns=3+b=resunet"
    assert short_arm("no-superkernel+num_subnets=1") == "no-superkernel+ns=1"
    assert short_arm("hinas-basic") == "hinas-basic"
    tuned = {"search.weight_optimizer.lr": 0.01, "search.arch_optimizer.lr": 0.003,
             "search.num_nodes": 3, "search.nesterov": True}
    assert run_name({"arm": "a", "seed": 2, "tuned": tuned}, "search", {}) == \
        "a/s2/search/ao.lr=.003,n=True,nn=3,wo.lr=.01"


@pytest.fixture(scope="module")
def arm_studies():
    study = validate(TWO_ARMS)
    return [plan.plain_study() for plan in plan_arms(study, "two.yaml")]


def test_params_are_the_filter_keys_what_differs_between_arms_and_the_tuned_keys(arm_studies):
    keys = varying_keys(arm_studies)
    assert keys == ("search.weight_optimizer.lr", "search.loss.ssim_lambda")
    trial = with_overrides(arm_studies[1], {"search.loss.ssim_lambda": 0.25, "seed": 3})
    params = logged_params(trial, "search", keys)
    assert all(selected(key, (*FILTER_KEYS, *keys)) for key in params)
    assert params["search.weight_optimizer.lr"] == 0.05 and params["seed"] == 3
    assert params["search.loss.ssim_lambda"] == 0.25 and params["search_space.options.width"] == 4
    assert len(params) < 20 and not any(k.startswith(("tune.", "resources.")) for k in params)


def test_a_retrain_run_logs_the_trained_width_and_the_searched_one(arm_studies):
    noise = {"type": "awgn", "sigma": 25.0, "sigma_range": None, "quality": None}
    trial = with_overrides(arm_studies[0], {"retrain.noise_used": noise})
    params = logged_params(trial, "retrain")
    assert params["search_space.options.width"] == 8 and params["searched.width"] == 4
    assert params["search_space.options.num_nodes"] == 2 and "searched.num_nodes" not in params
    assert params["retrain.noise_used.sigma"] == 25.0
    assert "retrain.noise_used.quality" not in params  # unset values are left out


def test_the_parent_run_logs_only_the_filter_keys(arm_studies):
    params = logged_params(arm_studies[0], "study")
    assert params["search_space.name"] == "hinas" and params["data.test"] == ["embedded"]
    assert all(selected(key, FILTER_KEYS) for key in params)
