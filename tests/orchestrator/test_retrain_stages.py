"""`retrain.stages` (MoD-NAS Table 2 from one search): one retrain config per stage count,
each with its own dedup key and `stages` label, and one table row per stage count."""

from __future__ import annotations

from orchestrator.results.aggregate import RunRecord, study_tables
from orchestrator.study.arms import Arm
from orchestrator.study.plan import arm_plan
from orchestrator.study.units import retrain_configs, search_config
from searchspaces.registry import get_space
from studyspec.schema import Study

STUDY = {"name": "stages", "data": {"train": "embedded", "test": ["embedded"], "patch_size": 16},
         "search_space": {"name": "modnas", "options": {
             "stages": 3, "levels": 2, "width": 8, "channel_multiple": 4}},
         "retrain": {"stages": [6, 1, 3], "noise": [{"type": "awgn", "sigma": 15},
                                                    {"type": "awgn", "sigma": 25}]}}


def test_one_retrain_per_noise_and_stage_count_with_distinct_work():
    study = Study.model_validate(STUDY)
    plan = arm_plan(Arm("modnas"), 0, study, "stages.yaml")
    supernet = get_space("modnas").build_supernet(STUDY["search_space"]["options"], 1)
    search = search_config(plan, 0, 0, {})
    configs = retrain_configs(plan, search, supernet.derive().to_json(), "run-1")
    assert [(c["noise"]["sigma"], c["stages"]) for c in configs] == \
        [(15, 6), (15, 1), (15, 3), (25, 6), (25, 1), (25, 3)]
    assert [c["labels"]["stages"] for c in configs[:3]] == [6, 1, 3]
    assert "stages" not in search["labels"]  # the search config is not changed
    assert len({c["dedup_key"] for c in configs}) == 6
    unstaged = Study.model_validate({**STUDY, "retrain": {"noise": STUDY["retrain"]["noise"]}})
    plain = retrain_configs(arm_plan(Arm("modnas"), 0, unstaged, "s.yaml"), search,
                            supernet.derive().to_json(), "run-1")
    assert all("stages" not in c for c in plain) and len(plain) == 2


def _run(run_id: str, stages: str, psnr: float) -> RunRecord:
    tags = {"phase": "retrain", "arm": "modnas", "arm_index": "0", "unit": "modnas/s0",
            "eval_protocol": "p", "stages": stages, "arch_hash": "h"}
    return RunRecord(run_id, "FINISHED", tags, {"test/set12/sigma25/psnr": psnr,
                                                "cost/params": 1000.0 * int(stages)})


def test_a_row_per_stage_count_in_numeric_order():
    parent = RunRecord("p", "FINISHED", {"study": "stages"}, {})
    runs = [_run("a", "12", 30.0), _run("b", "1", 28.0), _run("c", "6", 29.5),
            _run("d", "1", 28.2)]
    [table] = study_tables(parent, runs)
    assert [row.label for row in table.rows] == ["modnas T=1", "modnas T=6", "modnas T=12"]
    assert [row.params for row in table.rows] == [1000.0, 6000.0, 12000.0]
    assert table.rows[0].cells[table.columns[0]].n == 2


def test_the_retrain_memory_estimate_is_that_of_the_largest_stage_count():
    from trainables.loops.memory_study import retrain_memory

    def total(stages):
        return retrain_memory(Study.model_validate(
            {**STUDY, "retrain": {"stages": stages}})).total

    assert total([1, 6]) == total([6]) > total([3]) > total([1])
