"""plots/curves.png of a search run: train loss and validation PSNR per epoch."""

from __future__ import annotations

import math

from matplotlib.figure import Figure

from trainables.plots.canvas import message, render
from trainables.search_history import SearchHistory

LABELS = {"train/loss": "train loss", "val/psnr": "validation PSNR (dB)"}


def draw_curves(figure: Figure, epochs: list[int], curves: dict[str, list[float]],
                title: str) -> None:
    drawable = {key: values for key, values in curves.items()
                if any(math.isfinite(v) for v in values)}
    if not epochs or not drawable:
        message(figure, "no epoch finished")
        return
    axes = figure.subplots(1, len(drawable), squeeze=False)[0]
    for ax, (key, values) in zip(axes, drawable.items()):
        ax.plot(epochs, values, marker="o", markersize=3)
        ax.set_xlabel("epoch")
        ax.set_title(LABELS.get(key, key))
        ax.grid(alpha=0.3)
        ax.ticklabel_format(axis="y", useOffset=False)  # a flat PSNR reads as dB, not 2e1 + x
        ax.xaxis.get_major_locator().set_params(integer=True)
    figure.suptitle(title)
    figure.tight_layout()


def curves_png(history: SearchHistory, title: str = "search") -> bytes:
    return render(lambda figure: draw_curves(figure, history.epochs, history.curves, title),
                  (9.0, 3.6))
