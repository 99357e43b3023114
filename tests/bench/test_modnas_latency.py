"""The MoD-NAS latency bench runs (tiny size) and measures the paper's Table 7 denoiser."""

from __future__ import annotations

import torch

from bench.modnas_latency import STAGES, modnas_t1_vs_dncnn_latency, table7_genotype
from searchspaces.modnas.plan import parameter_count


def test_bench_measures_the_table7_genotype_at_every_t():
    for stages in STAGES:
        genotype = table7_genotype(stages)
        assert genotype.arch["stages"] == stages and genotype.arch["skip_join"] == "concat"
        assert parameter_count(genotype.arch, 1) == 420_925 * stages + 2 * stages


def test_bench_reports_a_ratio_and_restores_threads():
    threads = torch.get_num_threads()
    result = modnas_t1_vs_dncnn_latency("tiny")
    assert torch.get_num_threads() == threads
    assert result["name"] == "modnas_t1_vs_dncnn_latency" and result["unit"] == "ratio"
    assert result["target"] == 0.6 and result["value"] > 0
    detail = result["detail"]
    assert detail["modnas_t1_params"] == 420_927 < detail["dncnn_params"]
    assert detail["t3_over_t1"] > 1 and detail["t6_over_t1"] > detail["t3_over_t1"]
