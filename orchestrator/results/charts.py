"""A group's PSNR bar chart: a cluster of bars per table row, one bar per test set x level,
error bars the sample standard deviation over the row's retrain runs; a paper's published
value for a bar is a black diamond on it (hollow: under another protocol, marked † in the
table).

Drawn with matplotlib's Agg canvas on a bare `Figure` (no pyplot state), in matplotlib's
default style whatever the user's matplotlibrc, at a fixed size and resolution, and
saved without the PNG `Software` text: the same table gives the same bytes.
"""

from __future__ import annotations

import io
import math

from matplotlib import style
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from orchestrator.results.aggregate import GroupTable, MetricColumn, Row, Stat

FIGURE_SIZE = (10.0, 5.0)  # inches
DPI = 100
CLUSTER_WIDTH = 0.8  # of the unit spacing between rows
Marks = list[dict[str, tuple[float, bool]]]  # per row: metric key -> (published, other protocol)


def psnr_columns(table: GroupTable) -> list[MetricColumn]:
    return [column for column in table.columns if column.kind == "psnr"]


def row_label(table: GroupTable, row: Row) -> str:
    return f"{row.label}\n{row.protocol[:8]}" if table.several_protocols else row.label


def bar_series(table: GroupTable, column: MetricColumn) -> tuple[list[float], list[float]]:
    """Means and standard deviations of a column down the rows (NaN where a row has none
    or an infinite one)."""
    stats = [row.cells.get(column) for row in table.rows]
    stats = [stat if stat and math.isfinite(stat.mean + stat.std) else None for stat in stats]
    return ([stat.mean if stat else math.nan for stat in stats],
            [stat.std if stat else math.nan for stat in stats])


def finite_stats(table: GroupTable) -> list[Stat]:
    """Every PSNR mean and std the chart can place on its axis."""
    return [stat for row in table.rows for column in psnr_columns(table)
            if (stat := row.cells.get(column)) and math.isfinite(stat.mean + stat.std)]


def value_range(stats: list[Stat], published: list[float] = ()) -> tuple[float, float]:
    """Whole decibels around every mean +- std (and published value), so small differences
    stay visible."""
    low = min([stat.mean - stat.std for stat in stats] + list(published))
    high = max([stat.mean + stat.std for stat in stats] + list(published))
    return math.floor(low - 0.5), math.ceil(high + 0.5)


def draw_published(axes: Axes, positions: list[float], column: MetricColumn, marks: Marks,
                   labelled: set[bool]) -> list[float]:
    """The column's published values as diamonds over its bars; the values drawn."""
    key = column.metric.removeprefix("test/")
    drawn = []
    for position, row in zip(positions, marks):
        if key not in row:
            continue
        value, other = row[key]
        label = None if other in labelled else ("published (other protocol)" if other
                                                else "published")
        labelled.add(other)
        axes.plot([position], [value], "D", color="black", markersize=6, label=label,
                  markerfacecolor="none" if other else "black", zorder=3)
        drawn.append(value)
    return drawn


def draw_bars(axes: Axes, table: GroupTable, marks: Marks | None = None) -> None:
    columns = psnr_columns(table)
    width = CLUSTER_WIDTH / len(columns)
    published: list[float] = []
    labelled: set[bool] = set()
    for index, column in enumerate(columns):
        offset = (index - (len(columns) - 1) / 2) * width
        means, stds = bar_series(table, column)
        positions = [row + offset for row in range(len(table.rows))]
        axes.bar(positions, means, width, yerr=stds, capsize=3,
                 label=f"{column.test_set} {column.level}")
        if marks:
            published += draw_published(axes, positions, column, marks, labelled)
    axes.set_ylim(*value_range(finite_stats(table), published))
    axes.set_ylabel("PSNR (dB)")
    axes.legend(fontsize="small")


def draw_chart(figure: Figure, table: GroupTable, marks: Marks | None = None) -> None:
    axes = figure.subplots()
    axes.set_title(table.title)
    if finite_stats(table):
        draw_bars(axes, table, marks)
    else:
        axes.text(0.5, 0.5, "no test PSNR logged", ha="center", va="center",
                  transform=axes.transAxes)
    axes.set_xticks(range(len(table.rows)), [row_label(table, row) for row in table.rows],
                    rotation=20, ha="right", rotation_mode="anchor", fontsize="small")
    figure.tight_layout()


def group_chart(table: GroupTable, marks: Marks | None = None) -> bytes:
    """The PNG bytes of the group's chart (`marks`: the rows' published values)."""
    with style.context("default"):
        figure = Figure(figsize=FIGURE_SIZE, dpi=DPI)
        FigureCanvasAgg(figure)
        draw_chart(figure, table, marks)
        buffer = io.BytesIO()
        figure.savefig(buffer, format="png", metadata={"Software": None})
    return buffer.getvalue()
