"""`plots/pareto.png` of a study's parent run: test PSNR against cost of every retrained unit.

One panel per test set x level (rows) and cost (columns: parameters, latency per
megapixel, as `trainables.loops.cost` logs them); a point is a unit (a searched or given
architecture at one seed, its runs averaged as for `results/pareto.*`). The Pareto front
(higher PSNR, lower cost; one front per evaluation protocol, never across protocols) is
drawn as a step line over its points, baseline arms as stars with their names. The data
is computed first (`pareto_panels`, what the tests read), then drawn deterministically.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.ticker import NullFormatter

from orchestrator.results.aggregate import (
    MetricColumn,
    Objective,
    RunRecord,
    bucket,
    finished_runs,
    group_columns,
    is_baseline,
    non_dominated,
    retrained,
    unit_point,
)
from trainables.plots import render

COSTS = {"cost/params": "parameters", "cost/latency_ms_per_mp": "latency (ms per megapixel)"}
PANEL_INCHES = (5.5, 3.8)


@dataclass(frozen=True)
class CostPoint:
    """One unit in one panel."""

    unit: str
    arm: str
    tuned: str
    protocol: str
    psnr: float
    cost: float
    baseline: bool  # a `baselines:` arm
    front: bool  # non-dominated among its protocol's points of the panel

    @property
    def label(self) -> str:
        return f"{self.arm} [{self.tuned}]" if self.tuned else self.arm


@dataclass(frozen=True)
class Panel:
    column: MetricColumn  # the test set x level whose PSNR is on the y axis
    cost: str  # the cost metric on the x axis
    points: tuple[CostPoint, ...]


def cost_panel(units: dict[str, list[RunRecord]], column: MetricColumn, cost: str) -> Panel:
    objectives = (Objective(column.metric, "max"), Objective(cost, "min"))
    points = [point for unit, runs in units.items()
              if (point := unit_point(unit, runs, objectives))
              and all(math.isfinite(value) for value in point.values)]
    front = {point.unit for members in bucket(points, lambda p: p.protocol).values()
             for point in non_dominated(members, objectives)}
    baselines = {unit for unit, runs in units.items() if any(map(is_baseline, runs))}
    return Panel(column, cost, tuple(
        CostPoint(p.unit, p.arm, p.tuned, p.protocol, p.values[0], p.values[1],
                  p.unit in baselines, p.unit in front)
        for p in sorted(points, key=lambda p: (p.values[1], p.unit))))


def pareto_panels(children: Iterable[RunRecord]) -> list[Panel]:
    """Every (test set x level, cost) panel that has at least one unit, in table order."""
    runs = retrained(finished_runs(children))
    units = bucket(runs, lambda run: run.tag("unit") or run.run_id)
    columns = [column for column in group_columns(runs) if column.kind == "psnr"]
    panels = [cost_panel(units, column, cost) for column in columns for cost in COSTS]
    return [panel for panel in panels if panel.points]


def draw_panel(axes: Axes, panel: Panel) -> None:
    plain = [p for p in panel.points if not p.baseline]
    axes.scatter([p.cost for p in plain], [p.psnr for p in plain], s=18, color="0.6",
                 label="retrained unit")
    for protocol, members in bucket([p for p in panel.points if p.front],
                                    lambda p: p.protocol).items():
        axes.plot([p.cost for p in members], [p.psnr for p in members], "o-",
                  drawstyle="steps-post", color="tab:blue", markersize=5,
                  label="Pareto front" if protocol == panel.points[0].protocol else None)
    for point in panel.points:
        if point.baseline:
            axes.scatter([point.cost], [point.psnr], marker="*", s=160, color="tab:red",
                         zorder=3, label="baseline")
        if point.baseline or point.front:
            axes.annotate(point.label, (point.cost, point.psnr), fontsize="x-small",
                          xytext=(4, 4), textcoords="offset points")
    if all(p.cost > 0 for p in panel.points):
        axes.set_xscale("log")
        axes.xaxis.set_minor_formatter(NullFormatter())  # labelled minor ticks collide
    axes.set_title(f"{panel.column.test_set} {panel.column.level}", fontsize="medium")
    axes.set_xlabel(COSTS[panel.cost])
    axes.set_ylabel("test PSNR (dB)")
    handles, labels = axes.get_legend_handles_labels()
    unique = dict(zip(labels, handles))  # one entry per kind of mark
    axes.legend(unique.values(), unique.keys(), fontsize="x-small")


def draw_pareto(figure: Figure, panels: Sequence[Panel]) -> None:
    rows = list(dict.fromkeys(panel.column for panel in panels))
    costs = list(dict.fromkeys(panel.cost for panel in panels))
    grid = figure.add_gridspec(len(rows), len(costs))
    for panel in panels:
        draw_panel(figure.add_subplot(grid[rows.index(panel.column), costs.index(panel.cost)]),
                   panel)


def pareto_png(panels: Sequence[Panel]) -> bytes:
    rows = len({panel.column for panel in panels})
    columns = len({panel.cost for panel in panels})
    size = (PANEL_INCHES[0] * columns, PANEL_INCHES[1] * rows)
    return render(lambda figure: draw_pareto(figure, panels), size, layout="constrained")
