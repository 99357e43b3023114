"""The scheduling benchmark: its ideal-makespan and list-schedule arithmetic on hand examples,
its stand-in loops, its study, and one tiny run of the real thing through `python -m bench`."""

from __future__ import annotations

import pickle
import time

import pytest

from bench import runner
from bench.schedule_efficiency import (
    SIZES,
    SleepRetrain,
    SleepSearch,
    planned_units,
    sleep_epochs,
    slots_of,
    study_dict,
)
from bench.schedule_model import Unit, ideal_makespan, simulate
from orchestrator.study.reading import validate

# chains 4 + 5 = 9, 2 + 1 = 3 and 6 + 2 = 8; work 12 + 3 + 8 = 23
HAND = [Unit("a/s0", 4.0, (3.0, 5.0)), Unit("b/s0", 2.0, (1.0,)), Unit("c/s0", 6.0, (2.0,))]


def test_ideal_is_work_over_slots_or_the_longest_chain():
    assert ideal_makespan(HAND, 2) == {"ideal_s": 11.5, "total_work_s": 23.0,
                                       "longest_chain_s": 9.0}
    assert ideal_makespan(HAND, 4)["ideal_s"] == 9.0  # enough slots: the longest chain binds
    assert ideal_makespan([], 4)["ideal_s"] == 0.0


def test_list_schedules_on_two_slots():
    # searches first: a, b | c after b | b's retrain, a's two | c's retrain last: ends at 13
    assert simulate(HAND, 2, "searches_first") == 13.0
    # b's retrain before c's search, or the longest chain first: 12
    assert simulate(HAND, 2, "retrains_first") == 12.0
    assert simulate(HAND, 2, "longest_chain") == 12.0
    assert simulate(HAND, 8, "searches_first") == 9.0  # a slot per trial: the longest chain
    with pytest.raises(ValueError, match="unknown policy"):
        simulate(HAND, 2, "random")


def test_list_schedules_with_start_costs():
    # 1 s of CPU before each trial: one more second per trial on the critical path
    assert simulate(HAND, 2, "searches_first", start_cpu_s=1.0) == 16.0
    # one core: a and b start together at half speed (2 s), later starts mostly alone
    assert simulate(HAND, 2, "searches_first", start_cpu_s=1.0, cores=1) == 17.0


def test_slots_are_the_scarcer_resource():
    assert slots_of({"CPU": 16.0, "GPU": 8.0}) == 16
    assert slots_of({"CPU": 3.0, "GPU": 8.0}) == 3
    assert slots_of({"CPU": 16.0}) == 0


def test_sleeps_keep_their_deadlines_and_report_each_epoch():
    reports = []
    began = time.perf_counter()
    sleep_epochs(0.3, 3, 0, lambda epoch, times: reports.append((epoch, times)))
    assert 0.29 < time.perf_counter() - began < 0.6
    assert [epoch for epoch, _ in reports] == [0, 1, 2]
    assert all(times["bench/ended"] >= times["bench/began"] for _, times in reports)
    resumed = []
    sleep_epochs(0.2, 3, 2, lambda epoch, times: resumed.append(epoch))  # after a restore
    assert resumed == [2]


def test_the_full_study_has_unequal_units_beyond_the_slots():
    spec = SIZES["full"]
    study = validate(study_dict("full"), "bench study")
    units = planned_units(study, spec.step_s)
    assert len(units) == spec.arms * len(spec.seeds) >= 18
    assert len(units) > spec.gpus / 0.5  # more units than slots
    for seed in range(len(spec.seeds)):  # unequal across arms at every seed
        same_seed = [unit for unit in units if unit.name.endswith(f"/s{seed}")]
        assert len({unit.search_s for unit in same_seed}) == spec.arms
        assert len({unit.retrain_s[0] for unit in same_seed}) == spec.arms
    for arm in range(spec.arms):  # and across seeds in every arm
        same_arm = [unit for unit in units if unit.name.startswith(f"arm{arm}/")]
        assert len({unit.search_s for unit in same_arm}) == len(spec.seeds)
    assert all(len(unit.retrain_s) == len(spec.noises) for unit in units)
    assert all(unit.search_s != unit.retrain_s[0] for unit in units)
    # emission order: round robin over arms, seed by seed
    assert [unit.name for unit in units[:7]] == [*(f"arm{i}/s0" for i in range(6)), "arm0/s1"]


def test_stand_ins_pickle():
    for loop in (SleepSearch(0.1, "{}"), SleepRetrain(0.1)):
        assert pickle.loads(pickle.dumps(loop)) == loop


@pytest.mark.slow  # starts Ray
def test_tiny_run_finishes_every_trial(own_ray):  # its logical GPUs: a cluster of its own
    result = runner.run_one("study_schedule_efficiency", "tiny")
    assert "error" not in result, result.get("error")
    detail, spec = result["detail"], SIZES["tiny"]
    assert detail["units"] == spec.arms * len(spec.seeds) > detail["slots"]
    assert detail["trials"] == detail["units"] * (1 + len(spec.noises))
    assert 0 < result["value"] <= 1.0 and result["unit"] == "ratio" and result["target"] == 0.85
    assert detail["measured_s"] >= detail["ideal_s"] > 0
