"""Cost metrics of a derived network (`trainables/loops/cost.py`) on single convolutions."""

from __future__ import annotations

import pytest
from torch import nn

from trainables.loops.cost import (
    cost_metrics,
    count_parameters,
    flops_per_megapixel,
    latency_ms_per_megapixel,
    peak_forward_memory_mib,
)


def _conv(in_channels: int, out_channels: int, bias: bool = False) -> nn.Conv2d:
    return nn.Conv2d(in_channels, out_channels, kernel_size=3, padding=1, bias=bias)


def test_count_parameters_of_a_conv():
    assert count_parameters(_conv(3, 8, bias=True)) == 3 * 8 * 9 + 8


@pytest.mark.parametrize("size", [256, 64])
def test_flops_of_a_3x3_conv_per_megapixel(size):
    channels = 4
    expected = 2 * 9 * channels * channels * 1e6 / 1e9  # 2*9*C*C*H*W FLOPs, per 10^6 pixels
    assert flops_per_megapixel(_conv(channels, channels), channels, size) == pytest.approx(expected)


def test_latency_is_positive():
    latency = latency_ms_per_megapixel(_conv(2, 2), 2, "cpu", size=32, warmup=1, repeats=3)
    assert 0 < latency < float("inf")


def test_peak_memory_counts_the_output_and_grows_with_size_and_width():
    small = peak_forward_memory_mib(_conv(1, 8), 1, "cpu", size=64)
    assert small == pytest.approx(64 * 64 * 8 * 4 / 2**20)  # the (1, 8, 64, 64) float32 output
    assert peak_forward_memory_mib(_conv(1, 8), 1, "cpu", size=128) > small
    assert peak_forward_memory_mib(_conv(1, 16), 1, "cpu", size=64) > small


def test_peak_memory_sees_intermediates_and_is_deterministic():
    net = nn.Sequential(_conv(1, 8), nn.ReLU(), _conv(8, 1))
    peak = peak_forward_memory_mib(net, 1, "cpu", size=64)
    assert peak == pytest.approx(2 * 64 * 64 * 8 * 4 / 2**20)  # conv output + ReLU output
    assert peak_forward_memory_mib(net, 1, "cpu", size=64) == peak


def test_cost_metrics_keys_and_training_flag_restored():
    net = nn.Sequential(_conv(1, 4, bias=True), nn.ReLU(), _conv(4, 1, bias=True))
    net.train()
    metrics = cost_metrics(net, 1, "cpu", size=32, repeats=2)
    assert set(metrics) == {"params", "gflops_per_mp", "latency_ms_per_mp", "peak_mem_mib"}
    assert metrics["params"] == count_parameters(net)
    assert all(value > 0 for value in metrics.values())
    assert net.training


def test_the_retrain_loop_measures_at_the_studys_cost_input_and_repeats():
    """retrain.cost reaches the measurement: a 1 -> 8 convolution's peak memory is its float32
    output at input_size (32 x 32 x 8 x 4 bytes), and the network runs 1 (FLOPs) + 2 untimed
    + `repeats` timed + 1 (memory) forward passes."""
    from orchestrator.study.reading import validate
    from trainables.data.bundles import RetrainData
    from trainables.loops import devices
    from trainables.loops.retrain import test_metrics

    study = validate({"name": "costs", "search_space": {"name": "dncnn"},
                      "retrain": {"cost": {"input_size": 32, "repeats": 3}}})
    net, passes = _conv(1, 8), []
    net.register_forward_hook(lambda *_: passes.append(1))
    data = RetrainData(train=[], val=[], test_sets={})
    metrics = test_metrics(net, study, data, [], devices.configure(1, 0))
    assert metrics["cost/peak_mem_mib"] == pytest.approx(32 * 32 * 8 * 4 / 2**20)
    assert len(passes) == 1 + 2 + 3 + 1
