"""`python -m bench` at size tiny: every benchmark prints its line (the Ray trial-concurrency
one only through its arithmetic), a missing module prints an error line, --only works."""

from __future__ import annotations

import json

import pytest

from bench import runner
from bench.tune_parallel import concurrency_speedup

CHEAP_RAY = "tune_overhead"  # the one Ray-based benchmark the test runs (about 40 s)
SKIPPED = {"parallel_trial_speedup",  # two Tuner runs: python -m bench --quick covers it
           "study_schedule_efficiency"}  # run at size tiny by test_schedule_efficiency.py


def lines(capsys) -> list[dict]:
    return [json.loads(line) for line in capsys.readouterr().out.splitlines() if line.strip()]


@pytest.fixture(scope="module")
def tiny_results():
    names = [name for name in runner.BENCHMARKS if name not in SKIPPED]
    return {result["name"]: result for result in runner.run(names, "tiny", out=_Null())}


class _Null:
    def write(self, text: str) -> int:
        return len(text)

    def flush(self) -> None:
        pass


@pytest.mark.slow  # runs every benchmark at tiny size, Ray's too
def test_every_benchmark_reports_a_value_or_an_error(tiny_results):
    assert set(tiny_results) == set(runner.BENCHMARKS) - SKIPPED
    for name, result in tiny_results.items():
        assert "error" in result or result["value"] is not None, name
        if "error" not in result:
            assert result["value"] > 0 and isinstance(result["detail"], dict), name
            assert "target" in result and "unit" in result, name


@pytest.mark.slow  # runs every benchmark at tiny size, Ray's too
def test_hinas_benchmarks_measure_both_supernets(tiny_results):
    memory = tiny_results["cell_sharing_memory_ratio"]
    assert memory["detail"]["cell_runs_with"] == 8 and memory["detail"]["cell_runs_without"] == 14
    assert 1.2 < memory["value"] < 1.75  # the cells' share is bounded by 14 / 8
    assert tiny_results["hinas_search_step"]["detail"]["peak_mib"] > 0
    assert tiny_results["supernet_flop_utilization"]["detail"]["step_gflop"] > 0


@pytest.mark.slow  # runs every benchmark at tiny size, Ray's too
def test_ray_benchmark_runs_a_trial(tiny_results):
    result = tiny_results[CHEAP_RAY]
    assert "error" not in result, result.get("error")
    assert result["detail"]["trial_s"] > 0 and result["detail"]["direct_s"] > 0
    assert result["detail"]["end_to_end_s"] >= result["detail"]["trial_s"]


def test_missing_module_prints_an_error_line(monkeypatch, capsys):
    monkeypatch.setitem(runner.BENCHMARKS, "ghost", ("bench.no_such_module", "ghost"))
    assert runner.main(["--size", "tiny", "--only", "ghost"]) == 0
    (line,) = lines(capsys)
    assert line["name"] == "ghost" and line["value"] is None
    assert "ModuleNotFoundError" in line["error"]


def test_only_takes_repeats_and_comma_lists():
    names = list(runner.BENCHMARKS)
    assert runner.selected([f"{names[0]},{names[1]}", names[2]]) == names[:3]
    assert runner.selected(None) == names
    with pytest.raises(SystemExit, match="unknown benchmark"):
        runner.selected(["nope"])


def test_concurrency_speedup_from_trial_clocks():
    sequential = [{"loop_start": 0.0, "loop_end": 10.0}, {"loop_start": 12.0, "loop_end": 22.0}]
    concurrent = [{"loop_start": 100.0, "loop_end": 110.0},
                  {"loop_start": 101.0, "loop_end": 111.0}]
    found = concurrency_speedup(sequential, concurrent)
    assert found["sequential_s"] == 20.0 and found["concurrent_span_s"] == 11.0
    assert found["speedup"] == pytest.approx(20 / 11)


@pytest.mark.slow  # runs every benchmark at tiny size, Ray's too
def test_superkernel_variants_compute_the_same_separate(tiny_results):
    import torch

    from bench.superkernel_speed import VARIANTS, layer_stack

    image = torch.randn(1, 8, 12, 12)
    outputs = {}
    for name in VARIANTS:
        stack = layer_stack(name, 8, 2).eval()  # same weights, expected (noise-free) weights
        generator = torch.Generator().manual_seed(1)
        for layer in stack:
            torch.nn.init.normal_(layer.distribution.logits, generator=generator)
        with torch.no_grad():
            outputs[name] = stack(image)
    for name in ("per_kernel_size", "per_candidate", "masked_per_candidate"):
        assert torch.allclose(outputs[name], outputs["separate"], atol=1e-5), name
    assert not torch.allclose(outputs["full"], outputs["separate"], atol=1e-3)
    result = tiny_results["superkernel_full_vs_separate_speedup"]
    detail = result["detail"]  # both figures of one run: separate / full, masked Eq. 3 / full
    assert result["value"] == detail["separate_over_full"] and result["target"] == 1.3
    assert detail["detail_targets"] == {"masked_per_candidate_over_full": 5.0}
    assert detail["conv_flops_over_full"]["masked_per_candidate"] == 9.0
    assert detail["per_candidate_over_full"] > 0 and detail["separate_step_ms"] > 0
