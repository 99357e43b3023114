"""plots/curves.png of a search run: train loss, validation PSNR and, with `search.monitor`,
the supernet's PSNR on each test set and level (one panel, a line each: MoD-NAS Fig. 3)."""

from __future__ import annotations

import math

from matplotlib.figure import Figure

from trainables.loops import PREFIX, SearchHistory, is_monitor_psnr
from trainables.plots.canvas import message, render

LABELS = {"train/loss": "train loss", "val/psnr": "validation PSNR (dB)"}
MONITOR_TITLE = "supernet test PSNR (dB)"


def panels(curves: dict[str, list[float]]) -> dict[str, dict[str, list[float]]]:
    """Panel title -> {legend label: values}; curves with no finite value are left out."""
    drawn: dict[str, dict[str, list[float]]] = {}
    for key, values in curves.items():
        if not any(math.isfinite(v) for v in values):
            continue
        if is_monitor_psnr(key):  # search/test/set12/sigma25/psnr -> "set12 sigma25"
            label = " ".join(key.removeprefix(PREFIX).split("/")[:-1])
            drawn.setdefault(MONITOR_TITLE, {})[label] = values
        else:
            drawn[LABELS.get(key, key)] = {"": values}
    return drawn


def draw_curves(figure: Figure, epochs: list[int], curves: dict[str, list[float]],
                title: str) -> None:
    drawable = panels(curves)
    if not epochs or not drawable:
        message(figure, "no epoch finished")
        return
    axes = figure.subplots(1, len(drawable), squeeze=False)[0]
    for ax, (panel, lines) in zip(axes, drawable.items()):
        for label, values in lines.items():
            ax.plot(epochs, values, marker="o", markersize=3, label=label or None)
        if len(lines) > 1 or "" not in lines:
            ax.legend(fontsize="small")
        ax.set_xlabel("epoch")
        ax.set_title(panel)
        ax.grid(alpha=0.3)
        ax.ticklabel_format(axis="y", useOffset=False)  # a flat PSNR reads as dB, not 2e1 + x
        ax.xaxis.get_major_locator().set_params(integer=True)
    figure.suptitle(title)
    figure.tight_layout()


def curves_png(history: SearchHistory, title: str = "search") -> bytes:
    width = 9.0 if len(panels(history.curves)) < 3 else 12.0
    return render(lambda figure: draw_curves(figure, history.epochs, history.curves, title),
                  (width, 3.6))
