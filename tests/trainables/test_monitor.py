"""search.monitor (MoD-NAS Fig. 3): the supernet scored on named test sets every search
epoch, in the Ray-free loop; the artefact-removal and Urban100 benchmarks by name; an
unknown monitor set is one line naming the key."""

import copy
from pathlib import Path

import numpy as np
import pytest

from orchestrator.cli import main
from orchestrator.study.reading import validate
from trainables.data.bundles import SearchData
from trainables.data.datasets import resolve_dataset
from trainables.data.embedded import embedded_images
from trainables.data.images import LUMINANCE_WEIGHTS
from trainables.data.loading import stage_data
from trainables.loops.evaluation import evaluate_sets
from trainables.loops.history import SearchHistory
from trainables.loops.monitor import Monitor
from trainables.loops.parts import centre_crop
from trainables.loops.search import run_search
from trainables.plots.curves import MONITOR_TITLE, panels

SHARED = Path(__file__).resolve().parents[2].parent / "shared" / "datasets"
needs_shared = pytest.mark.skipif(not (SHARED / "classic5").is_dir(),
                                  reason="../shared/datasets not available")
TINY = {
    "name": "tiny",
    "data": {"patch_size": 16, "noise": {"type": "awgn", "sigma": 25}},
    "search_space": {"name": "hinas",
                     "options": {"num_layers": 2, "num_nodes": 2, "width": 3, "stem_channels": 4}},
    "search": {"epochs": 3, "steps_per_epoch": 2, "batch_size": 2, "warmup_epochs": 1,
               "validate_from_epoch": 1, "val_crop": 24, "monitor_crop": 32,
               "arch_optimizer": {"name": "adam", "lr": 0.05}},
}


def searched(images, runtime, monitor):
    reports = []
    data = SearchData(train_w=images[:2], train_a=images[2:3], val=images[3:], monitor=monitor)
    run_search(validate(TINY), data, lambda e, m, s: reports.append((m, copy.deepcopy(s))),
               runtime)
    return reports


def test_search_logs_the_monitor_sets_every_epoch_without_changing_the_search(images, runtime):
    monitor = {"embedded": embedded_images("test", color=False)[:2]}
    reports = searched(images, runtime, monitor)
    assert len(reports) == 3
    for metrics, _ in reports:
        assert 5 < metrics["search/test/embedded/sigma25/psnr"] < 60
        assert 0 < metrics["search/test/embedded/sigma25/ssim"] <= 1
        assert metrics["time/monitor_s"] > 0
    plain = searched(images, runtime, {})
    assert not any(key.startswith("search/test/") for key in plain[0][0])
    for (watched, _), (alone, _) in zip(reports, plain):  # monitoring draws no randomness
        assert watched["train/loss"] == alone["train/loss"]
        assert watched["val/psnr"] == alone["val/psnr"]
    history = SearchHistory.from_state(reports[-1][1]["history"])
    curve = history.curves["search/test/embedded/sigma25/psnr"]
    assert curve == [m["search/test/embedded/sigma25/psnr"] for m, _ in reports]
    assert panels(history.curves)[MONITOR_TITLE] == {"embedded sigma25": curve}


def test_monitor_scores_whole_or_cropped_images_with_the_test_protocol(runtime):
    from searchspaces.registry import get_space

    supernet = get_space("hinas").build_supernet(validate(TINY).search_space.resolved_options(),
                                                  1)
    sets = {"embedded": centre_crop(embedded_images("test", color=False)[:2], 48)}
    whole = Monitor.build(sets, None, ["sigma25", "sigma50"], runtime)(supernet)
    expected = evaluate_sets(supernet, sets, ["sigma25", "sigma50"], "cpu")
    assert {k: v for k, v in whole.items() if k != "time/monitor_s"} == \
        {f"search/test/{key}": value for key, value in expected.items()}
    cropped = Monitor.build(sets, 32, ["sigma25"], runtime)
    assert {image.pixels.shape[:2] for image in cropped.sets["embedded"]} == {(32, 32)}
    assert supernet.training  # the supernet goes back to training mode
    assert Monitor.build({}, None, ["sigma25"], runtime)(supernet) == {}


@needs_shared
def test_artefact_removal_and_urban100_benchmarks_resolve_by_name():
    classic5 = resolve_dataset("classic5", "test", SHARED, color=False)
    assert [image.name for image in classic5] == \
        ["baboon", "barbara", "boats", "lena", "peppers"]
    assert {image.pixels.shape for image in classic5} == {(512, 512, 1)}
    grey = resolve_dataset("live1", "test", SHARED, color=False)
    colour = resolve_dataset("live1", "test", SHARED, color=True)
    assert len(grey) == len(colour) == 29
    luminance = colour[0].pixels.astype(np.float64) @ LUMINANCE_WEIGHTS  # BT.601 Y
    np.testing.assert_allclose(grey[0].pixels[..., 0], luminance, atol=1e-6)
    urban = resolve_dataset("urban100", "test", SHARED, color=False)
    assert len(urban) == 100 and urban[0].pixels.shape[2] == 1


@needs_shared
def test_monitor_sets_travel_with_the_search_data():
    study = validate({**TINY, "data": {**TINY["data"], "root": str(SHARED)},
                      "search": {**TINY["search"], "monitor": ["classic5"]}})
    data = stage_data(study)
    assert list(data.search.monitor) == ["classic5"] and len(data.search.monitor["classic5"]) == 5
    assert data.retrain.test_sets.keys() == {"embedded"}


def test_an_unknown_monitor_set_is_one_line_naming_the_key(tmp_path, capsys):
    study = tmp_path / "study.yaml"
    study.write_text("name: bad\nsearch_space: {name: hinas, options: {num_layers: 2, "
                     "num_nodes: 2, width: 4}}\nsearch: {monitor: [set13]}\n"
                     f"data: {{root: {tmp_path}}}\n")
    assert main(["validate", str(study)]) == 2
    error = capsys.readouterr().err.strip()
    assert "\n" not in error
    assert error.startswith("error: search.monitor: unknown dataset 'set13'"), error
