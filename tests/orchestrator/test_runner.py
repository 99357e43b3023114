"""What the runner derives before the experiment starts: trials in flight from the cluster, and
the parent run's tags the tables are built from."""

import json

from orchestrator.run.runner import table_tags, trial_capacity
from orchestrator.study.reading import validate

BASE = {"name": "r", "search_space": {"name": "hinas"}}


def study(**sections):
    return validate({**BASE, **sections})


def test_trials_in_flight_follow_the_smallest_phase_request():
    gpu_half = {"search": {"cpu": 1, "gpu": 0.5}, "retrain": {"cpu": 2, "gpu": 1}}
    studies = {"a": study(resources=gpu_half)}
    assert trial_capacity(studies, {"CPU": 16.0, "GPU": 8.0}) == 16  # 8 / 0.5
    assert trial_capacity(studies, {"CPU": 4.0, "GPU": 8.0}) == 4  # CPUs bind
    cpu_only = {"b": study(resources={"search": {"cpu": 3}, "retrain": {"cpu": 3}})}
    assert trial_capacity(cpu_only, {"CPU": 2.0}) == 1  # never zero


def test_parent_tags_carry_groups_in_order_and_objectives():
    grouped = study(groups={"t1": {"title": "Table 1"}, "t4": {}},
                    tune={"objectives": [{"metric": "val/psnr"},
                                         {"metric": "cost/params", "mode": "min"}],
                          "space": {"search.loss.ssim_lambda": {"type": "float", "low": 0,
                                                                "high": 1}}})
    tags = table_tags(grouped)
    assert json.loads(tags["groups"]) == [{"name": "t1", "title": "Table 1"},
                                          {"name": "t4", "title": "t4"}]
    assert json.loads(tags["objectives"]) == [{"metric": "val/psnr", "mode": "max"},
                                              {"metric": "cost/params", "mode": "min"}]
    assert "objectives" not in table_tags(study())
