"""The trial pictures for each search space: a tiny search and retrain through
the Ray-free loops, then every plot a search and a retrain run log, decoded and checked;
the history survives a resume; a failing plot is a tag, not a failed trial."""

import copy
import io
import time

import numpy as np
import pytest
import torch
from PIL import Image

from orchestrator.study.reading import validate
from searchspaces.registry import get_space
from searchspaces.views import views_for
from trainables.data.bundles import RetrainData, SearchData
from trainables.loops.history import SearchHistory
from trainables.loops.retrain import run_retrain
from trainables.loops.search import run_search
from trainables.plots import log_plots, retrain_plots, search_plots

pytestmark = pytest.mark.usefixtures("small_costs")  # cost code is checked in test_cost.py

SPACES = ("hinas", "modnas", "superkernel")
SEARCH_PLOTS = {"plots/curves.png", "plots/arch_weights.png", "plots/architecture.png"}
RETRAIN_PLOTS = {"plots/architecture.png", "plots/samples.png"}


def tiny_study(space: str) -> dict:
    return {
        "name": "tiny",
        "data": {"patch_size": 16, "noise": {"type": "awgn", "sigma": 25}},
        "search_space": {"name": space, "options": get_space(space).tiny_options()},
        "search": {"epochs": 3, "steps_per_epoch": 1, "batch_size": 2, "warmup_epochs": 0,
                   "validate_from_epoch": 0, "val_crop": 16,
                   "arch_optimizer": {"name": "adam", "lr": 0.1}},
        "retrain": {"epochs": 1, "steps_per_epoch": 1, "batch_size": 2},
    }


@pytest.fixture(scope="module", params=SPACES)
def searched(request, images, runtime):
    """(study, genotype, reported states) of a 3-epoch search of one space."""
    study = validate(tiny_study(request.param))
    states = []
    data = SearchData(train_w=images[:2], train_a=images[2:3], val=images[3:])
    genotype = run_search(study, data, lambda e, m, s: states.append(copy.deepcopy(s)), runtime)
    return study, genotype, states


def decoded(png: bytes) -> np.ndarray:
    assert png.startswith(b"\x89PNG")
    pixels = np.asarray(Image.open(io.BytesIO(png)).convert("RGB"))
    assert pixels.shape[0] > 100 and pixels.shape[1] > 100
    assert len(np.unique(pixels.reshape(-1, 3), axis=0)) > 10  # not blank
    return pixels


def test_history_holds_curves_and_every_table_per_epoch(searched):
    study, _, states = searched
    history = SearchHistory.from_state(states[-1]["history"])
    assert history.epochs == [0, 1, 2]
    assert all(len(values) == 3 for values in history.curves.values())
    assert set(history.curves) == {"train/loss", "val/psnr"}
    assert history.tables
    for table in history.tables.values():
        assert len(table.values) == 3
        assert all(v.shape == (len(table.rows), len(table.columns)) for v in table.values)
    first = torch.cat([t.values[0].flatten() for t in history.tables.values()])
    last = torch.cat([t.values[-1].flatten() for t in history.tables.values()])
    assert not torch.equal(first, last)  # the architecture moved


def test_search_plots_are_drawn_fast_and_deterministic(searched):
    _, genotype, states = searched
    plots = search_plots(genotype, states[-1])
    assert set(plots) == SEARCH_PLOTS
    for path, make in plots.items():
        began = time.perf_counter()
        png = make()
        assert time.perf_counter() - began < 3.0, path  # well under a second unloaded
        decoded(png)
        assert make() == png, path  # same data, same bytes


def test_retrain_plots_show_architecture_and_samples(searched, images, runtime):
    study, genotype, _ = searched
    data = RetrainData(train=images[:3], val=images[3:], test_sets={"tiny": images[3:]})
    model, _ = run_retrain(study, genotype, study.data.noise, data, lambda *a: None, runtime)
    plots = retrain_plots(genotype, model, data.test_sets, ["sigma25"], runtime.device)
    assert set(plots) == RETRAIN_PLOTS
    samples = decoded(plots["plots/samples.png"]())
    assert samples.shape[0] > 200  # a row of three crops at least
    decoded(plots["plots/architecture.png"]())


def test_a_resumed_search_keeps_the_whole_history(searched, images, runtime):
    study, _, states = searched
    resumed = []
    data = SearchData(train_w=images[:2], train_a=images[2:3], val=images[3:])
    run_search(study, data, lambda e, m, s: resumed.append(copy.deepcopy(s)), runtime,
               state=states[1])
    history = SearchHistory.from_state(resumed[-1]["history"])
    assert history.epochs == [0, 1, 2]
    saved = io.BytesIO()
    torch.save(resumed[-1], saved)  # the checkpoint loads as Tune's trials load it
    saved.seek(0)
    assert torch.load(saved, weights_only=True)["history"]["epochs"] == [0, 1, 2]


@pytest.mark.parametrize("space", SPACES)
def test_tables_of_a_fresh_supernet(space):
    """Probability tables have rows that sum to 1 (or, for filter keeps, lie in [0, 1])."""
    spec = get_space(space)
    supernet = spec.build_supernet(spec.tiny_options(), 1)
    tables = views_for(space).weight_tables(supernet)
    assert tables
    for table in tables:
        assert table.values.shape == (len(table.rows), len(table.columns))
        if table.unit == "probability" and "keep" not in table.name:
            assert torch.allclose(table.values.nansum(1), torch.ones(len(table.rows)))


@pytest.mark.parametrize("options", [
    {"superkernel": "factorized"}, {"superkernel": "filterwise_attention"},
    {"superkernel": "none"}, {"backbone": "attention_unet", "num_subnets": 2},
])
def test_superkernel_variants_draw(options):
    spec = get_space("superkernel")
    supernet = spec.build_supernet({**spec.tiny_options(), **options}, 1)
    history = SearchHistory()
    history.record(0, {"train/loss": 1.0, "val/psnr": 20.0},
                   views_for("superkernel").weight_tables(supernet))
    plots = search_plots(supernet.derive(), {"history": history.to_state()})
    for make in plots.values():
        decoded(make())


def test_modnas_skip_op_and_dncnn_draw():
    spec = get_space("modnas")
    supernet = spec.build_supernet({**spec.tiny_options(), "depth_search": "skip_op"}, 1)
    decoded(search_plots(spec.set_one_hot(supernet), None)["plots/architecture.png"]())
    from searchspaces.baselines import dncnn_genotype

    decoded(search_plots(dncnn_genotype(), None)["plots/architecture.png"]())


class Recorder:
    def __init__(self):
        self.artifacts, self.tags = {}, {}

    def log_bytes(self, run_id, data, path):
        self.artifacts[path] = data

    def set_tags(self, run_id, tags):
        self.tags.update(tags)


def test_a_failing_plot_is_a_warning_tag():
    def broken():
        raise ValueError("no data\nmore")

    tracker = Recorder()
    logged = log_plots(tracker, "run", {"plots/a.png": lambda: b"png", "plots/b.png": broken})
    assert logged == ["plots/a.png"] and set(tracker.artifacts) == {"plots/a.png"}
    assert tracker.tags == {"plot_warning.plots/b.png": "ValueError: no data"}
