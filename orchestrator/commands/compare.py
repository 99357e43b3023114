"""`python -m orchestrator compare RUN_A RUN_B`: two runs' genotypes side by side, every
changed operation (or other architecture entry) marked `*`, then the params and the last
metric values that differ; as text, and drawn into `compare.png`.

A genotype is compared entry by entry: its space-specific `arch` is walked down to the
lists of plain values (a HiNAS edge `["sep_3x3", 1]` is one entry: operation and input).
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from matplotlib import style
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from mlflow.entities import Run
from mlflow.tracking import MlflowClient

from orchestrator.commands.runs import find_run, run_genotype
from searchspaces.genotype import Genotype

MARK = "*"
ABSENT = "-"
SHOWN_TAGS = ("phase", "arm", "seed", "unit", "arch_hash")
MAX_CELL = 40  # characters of a value in a column
PNG_LINES = 90  # lines drawn into compare.png (the text has them all)


@dataclass(frozen=True)
class Difference:
    key: str
    a: str
    b: str

    @property
    def changed(self) -> bool:
        return self.a != self.b


def entries(value: Any, path: str = "") -> Iterator[tuple[str, str]]:
    """(path, compact JSON) of every entry of an architecture: lists of plain values and
    plain values are entries; objects and lists of lists are walked into."""
    if isinstance(value, Mapping):
        for key in value:
            yield from entries(value[key], f"{path}.{key}" if path else str(key))
    elif isinstance(value, list) and any(isinstance(item, (list, Mapping)) for item in value):
        for index, item in enumerate(value):
            yield from entries(item, f"{path}[{index}]")
    else:
        yield path, json.dumps(value, separators=(", ", ": "))


def side_by_side(a: Mapping[str, str], b: Mapping[str, str]) -> list[Difference]:
    """Every key of `a` then those only in `b`; ABSENT where a side lacks it."""
    keys = list(a) + [key for key in b if key not in a]
    return [Difference(key, a.get(key, ABSENT), b.get(key, ABSENT)) for key in keys]


def genotype_rows(a: Genotype, b: Genotype) -> list[Difference]:
    heading = [Difference("space", a.space, b.space),
               Difference("arch_hash", a.arch_hash(), b.arch_hash())]
    if a.primitives != b.primitives:
        heading.append(Difference("primitives", ",".join(a.primitives), ",".join(b.primitives)))
    return heading + side_by_side(dict(entries(a.arch)), dict(entries(b.arch)))


def number(value: float) -> str:
    return f"{value:.6g}"


def param_rows(a: Run, b: Run) -> list[Difference]:
    rows = side_by_side(a.data.params, b.data.params)
    return sorted((row for row in rows if row.changed), key=lambda row: row.key)


def metric_rows(a: Run, b: Run) -> list[Difference]:
    left = {key: number(value) for key, value in a.data.metrics.items()}
    right = {key: number(value) for key, value in b.data.metrics.items()}
    return sorted((row for row in side_by_side(left, right) if row.changed),
                  key=lambda row: row.key)


def delta(row: Difference) -> str:
    try:
        return f"{float(row.b) - float(row.a):+.4g}"
    except ValueError:
        return ""


@dataclass(frozen=True)
class Comparison:
    runs: tuple[Run, Run]
    genotype: list[Difference]
    params: list[Difference]
    metrics: list[Difference]


def compare_runs(client: MlflowClient, run_a: str, run_b: str) -> Comparison:
    a, b = find_run(client, run_a), find_run(client, run_b)
    return Comparison((a, b), genotype_rows(run_genotype(client, a), run_genotype(client, b)),
                      param_rows(a, b), metric_rows(a, b))


def clip(text: str) -> str:
    return text if len(text) <= MAX_CELL else text[: MAX_CELL - 3] + "..."


def table(rows: list[Difference], marked: bool, with_delta: bool = False) -> list[str]:
    """Aligned `  key | A | B` lines; a changed row starts with MARK when `marked`."""
    cells = [(row.key, clip(row.a), clip(row.b), delta(row) if with_delta else "")
             for row in rows]
    cells = [("", "A", "B", "B - A" if with_delta else ""), *cells]
    widths = [max(len(cell[i]) for cell in cells) for i in range(3)]
    lines = []
    for index, cell in enumerate(cells):
        mark = MARK if marked and index and rows[index - 1].changed else " "
        parts = [cell[i].ljust(widths[i]) for i in range(3)] + ([cell[3]] if with_delta else [])
        lines.append(f"{mark} " + " | ".join(parts).rstrip())
    return lines


def run_heading(letter: str, run: Run) -> str:
    tags = run.data.tags
    shown = ", ".join(f"{key}={tags[key]}" for key in SHOWN_TAGS if key in tags)
    return f"{letter}: run {run.info.run_id} ({run.info.run_name}) {shown}".rstrip()


def comparison_lines(comparison: Comparison) -> list[str]:
    a, b = comparison.runs
    changed = sum(row.changed for row in comparison.genotype[2:])
    lines = [run_heading("A", a), run_heading("B", b), "",
             f"genotype ({changed} entr{'y' if changed == 1 else 'ies'} differ, marked {MARK})",
             *table(comparison.genotype, marked=True), ""]
    lines += [f"params that differ ({len(comparison.params)})"]
    lines += table(comparison.params, marked=False) if comparison.params else ["  none"]
    lines += ["", f"metrics that differ, last values ({len(comparison.metrics)})"]
    lines += (table(comparison.metrics, marked=False, with_delta=True) if comparison.metrics
              else ["  none"])
    return lines


def comparison_png(lines: list[str], path: Path) -> Path:
    """The text drawn in monospace, changed genotype entries in red."""
    shown = lines[:PNG_LINES] + ([f"... {len(lines) - PNG_LINES} more lines in the text"]
                                 if len(lines) > PNG_LINES else [])
    width = max(60, max(len(line) for line in shown))
    with style.context("default"):
        figure = Figure(figsize=(width * 0.075 + 0.4, len(shown) * 0.19 + 0.4), dpi=100)
        FigureCanvasAgg(figure)
        axes = figure.add_axes((0, 0, 1, 1))
        axes.axis("off")
        step = 1 / (len(shown) + 1)
        for index, line in enumerate(shown):
            color = "#c0392b" if line.startswith(MARK) else "black"
            axes.text(0.01, 1 - (index + 1) * step, line, family="monospace", fontsize=9,
                      color=color, va="center", transform=axes.transAxes)
        figure.savefig(path, metadata={"Software": None})
    return path


def compare_command(uri: str, run_a: str, run_b: str, out: str | Path = ".") -> list[str]:
    """The comparison's text lines; compare.png written into `out`."""
    lines = comparison_lines(compare_runs(MlflowClient(uri), run_a, run_b))
    folder = Path(out)
    folder.mkdir(parents=True, exist_ok=True)
    png = comparison_png(lines, folder / "compare.png")
    return [*lines, "", f"wrote {png}"]
