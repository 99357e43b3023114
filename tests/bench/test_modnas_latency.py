"""The MoD-NAS latency bench runs (tiny size) and measures the documented genotype."""

from __future__ import annotations

import torch

from bench.modnas_latency import modnas_t1_vs_dncnn_latency, representative_genotype
from searchspaces.modnas.plan import full_width_arch, parameter_count


def test_representative_genotype_is_narrow_like_the_papers():
    genotype = representative_genotype()
    assert genotype.arch["stages"] == 1 and genotype.arch["width"] == 64
    params = parameter_count(genotype.arch, 1)
    assert 300_000 < params < 500_000  # the paper's T = 1 network: 418k
    assert params < parameter_count(full_width_arch(genotype.arch), 1)


def test_bench_reports_a_ratio_and_restores_threads():
    threads = torch.get_num_threads()
    result = modnas_t1_vs_dncnn_latency("tiny")
    assert torch.get_num_threads() == threads
    assert result["name"] == "modnas_t1_vs_dncnn_latency" and result["unit"] == "ratio"
    assert result["target"] == 0.6 and result["value"] > 0
    assert result["detail"]["modnas_params"] < result["detail"]["dncnn_params"]
