"""One way to turn a drawing into PNG bytes: matplotlib's Agg canvas on a bare `Figure`
(no pyplot state, safe in Ray workers), matplotlib's default style whatever the
user's matplotlibrc, saved without the PNG `Software` text, so the same data gives the
same bytes (as `orchestrator/results/charts.py`)."""

from __future__ import annotations

import io
from collections.abc import Callable

from matplotlib import style
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

DPI = 100
MAX_INCHES = 60.0  # either side; a huge table is drawn smaller rather than refused


def render(draw: Callable[[Figure], None], size: tuple[float, float],
           layout: str | None = None) -> bytes:
    """PNG bytes of a `size` (inches) figure that `draw` fills."""
    size = (min(size[0], MAX_INCHES), min(size[1], MAX_INCHES))
    with style.context("default"):
        figure = Figure(figsize=size, dpi=DPI, layout=layout)
        FigureCanvasAgg(figure)
        draw(figure)
        buffer = io.BytesIO()
        figure.savefig(buffer, format="png", metadata={"Software": None})
    return buffer.getvalue()


def message(figure: Figure, text: str) -> None:
    """A figure that says why there is nothing to draw."""
    axes = figure.add_subplot()
    axes.set_axis_off()
    axes.text(0.5, 0.5, text, ha="center", va="center", transform=axes.transAxes)
