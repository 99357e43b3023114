"""plots/architecture.png of every run with a genotype: the space's diagram of it
(`searchspaces.views.Diagram`: panels of positioned boxes and labelled arrows), drawn at
one fixed scale so that text and boxes keep their size whatever the network's."""

from __future__ import annotations

from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.patches import FancyArrowPatch

from searchspaces.genotype import Genotype
from searchspaces.views import Diagram, Panel, views_for
from trainables.plots.canvas import render

UNIT_INCHES = 0.32  # one panel unit, in both directions
MARGIN = (3.2, 1.8)  # panel units beyond the outermost box centres (x, y)
TITLE_INCHES = 0.6  # the diagram's title
PANEL_TITLE_INCHES = 0.3
LEFT_INCHES = 0.2
COLOURS = {"input": "#e6e6e6", "node": "#cfe2f3", "block": "#fff2cc", "output": "#d9ead3"}


def limits(panel: Panel) -> tuple[float, float, float, float]:
    xs, ys = [box.x for box in panel.boxes], [box.y for box in panel.boxes]
    return min(xs) - MARGIN[0], max(xs) + MARGIN[0], min(ys) - MARGIN[1], max(ys) + MARGIN[1]


def panel_inches(panel: Panel) -> tuple[float, float]:
    x0, x1, y0, y1 = limits(panel)
    return (x1 - x0) * UNIT_INCHES, (y1 - y0) * UNIT_INCHES + PANEL_TITLE_INCHES


def figure_size(diagram: Diagram) -> tuple[float, float]:
    sizes = [panel_inches(panel) for panel in diagram.panels]
    width = max([8.0, *(w + 2 * LEFT_INCHES for w, _ in sizes)])
    return width, TITLE_INCHES + sum(h for _, h in sizes)


def draw_panel(axes: Axes, panel: Panel) -> None:
    x0, x1, y0, y1 = limits(panel)
    axes.set_xlim(x0, x1)
    axes.set_ylim(y0, y1)
    axes.set_axis_off()
    axes.set_title(panel.title, loc="left", fontsize=9)
    boxes = {box.key: box for box in panel.boxes}
    texts = {box.key: axes.text(box.x, box.y, box.label, ha="center", va="center", fontsize=7,
                                family="monospace", zorder=3,
                                bbox={"boxstyle": "round,pad=0.4", "ec": "#555555",
                                      "fc": COLOURS.get(box.kind, "white")})
             for box in panel.boxes}
    for arrow in panel.arrows:
        start, end = boxes[arrow.source], boxes[arrow.target]
        axes.add_patch(FancyArrowPatch(
            (start.x, start.y), (end.x, end.y), arrowstyle="-|>", mutation_scale=9,
            connectionstyle=f"arc3,rad={arrow.bend}", linewidth=0.8, color="#333333",
            linestyle="--" if arrow.dashed else "-", zorder=4,
            patchA=texts[arrow.source].get_bbox_patch(),
            patchB=texts[arrow.target].get_bbox_patch()))
        if arrow.label:
            # the middle of the arc3 curve: chord middle + rad / 2 * (dy, -dx)
            dx, dy = end.x - start.x, end.y - start.y
            x = (start.x + end.x) / 2 + arrow.bend / 2 * dy
            y = (start.y + end.y) / 2 - arrow.bend / 2 * dx
            axes.text(x, y, arrow.label, ha="center", va="center", fontsize=6, zorder=5,
                      bbox={"boxstyle": "round,pad=0.15", "fc": "white", "ec": "none",
                            "alpha": 0.85})


def draw_diagram(figure: Figure, diagram: Diagram) -> None:
    width, height = figure.get_size_inches()
    top = height - TITLE_INCHES
    for panel in diagram.panels:
        panel_width, panel_height = panel_inches(panel)
        top -= panel_height
        rect = (LEFT_INCHES / width, top / height, panel_width / width,
                (panel_height - PANEL_TITLE_INCHES) / height)
        draw_panel(figure.add_axes(rect), panel)
    figure.suptitle(diagram.title, x=LEFT_INCHES / width, ha="left", fontsize=10,
                    y=1 - 0.15 / height, va="top")


def diagram_png(diagram: Diagram) -> bytes:
    return render(lambda figure: draw_diagram(figure, diagram), figure_size(diagram))


def architecture_png(genotype: Genotype) -> bytes:
    """The diagram of `genotype` by its space's views."""
    return diagram_png(views_for(genotype.space).diagram(genotype))
