"""A trial's pictures by name, made and logged one at a time (a failing picture is skipped
with a warning tag, never failing the trial)."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import torch

from searchspaces.genotype import Genotype
from trainables.data import NamedImage
from trainables.loops import SearchHistory
from trainables.plots.arch_weights import arch_weights_png
from trainables.plots.architecture import architecture_png
from trainables.plots.curves import curves_png
from trainables.plots.samples import make_samples, samples_png

Plots = dict[str, Callable[[], bytes]]  # artifact path -> its PNG maker
log = logging.getLogger(__name__)


def log_plots(tracker: Any, run_id: str, plots: Plots) -> list[str]:
    """Make and log every plot; one that fails is skipped with a `plot_warning.<path>` tag
    on the run (a picture never fails a trial). Returns the paths logged."""
    logged = []
    for path, make in plots.items():
        try:
            tracker.log_bytes(run_id, make(), path)
        except Exception as error:  # noqa: BLE001  (any drawing error: warn, go on)
            reason = f"{type(error).__name__}: {(str(error).splitlines() or [''])[0][:300]}"
            log.warning("plot %s not logged: %s", path, reason)
            tracker.set_tags(run_id, {f"plot_warning.{path}": reason})
        else:
            logged.append(path)
    return logged


def search_plots(genotype: Genotype, state: dict[str, Any] | None) -> Plots:
    """A search run's pictures from its last reported state (its history)."""
    history = SearchHistory.from_state((state or {}).get("history"))
    title = f"{genotype.space} search"
    return {
        "plots/curves.png": lambda: curves_png(history, title),
        "plots/arch_weights.png": lambda: arch_weights_png(history),
        "plots/architecture.png": lambda: architecture_png(genotype),
    }


def retrain_plots(genotype: Genotype, model: torch.nn.Module,
                  images: dict[str, list[NamedImage]], keys: list[str],
                  device: torch.device | str) -> Plots:
    """A retrain run's pictures: its architecture and a few denoised test crops."""
    return {
        "plots/architecture.png": lambda: architecture_png(genotype),
        "plots/samples.png": lambda: samples_png(make_samples(model, images, keys, device)),
    }
