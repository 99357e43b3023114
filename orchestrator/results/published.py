"""The papers' values beside a group table's measured ones (the study's `published` entries,
read back from the parent run's `study.yaml`): per metric column a `published` column before
ours and a `Δ` (ours - published) after it, published cost columns after ours, and the
sources (and, where the paper's protocol differs, the note: `†`) under the table."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import yaml
from mlflow.tracking import MlflowClient

from orchestrator.results.aggregate import GroupTable, MetricColumn, Row

COST_COLUMNS = {"params": ("params (published)", ",.0f"),
                "gflops_per_mp": ("GFLOPs/MP (published)", ".2f"),
                "search_gpu_hours": ("search GPU-hours (published)", ".1f"),
                "search_peak_mem_mib": ("peak memory (MiB, published)", ".0f")}
MARK = "†"


@dataclass(frozen=True, eq=False)  # told apart by identity: one per study entry
class Published:
    arm: str
    source: str
    values: Mapping[str, float]
    group: str | None = None
    stages: int | None = None
    note: str | None = None


def study_published(client: MlflowClient, parent_run_id: str) -> list[Published]:
    """The `published` entries of the study the parent run ran ([] without any)."""
    try:
        path = client.download_artifacts(parent_run_id, "study.yaml")
        with open(path) as file:
            study = yaml.safe_load(file) or {}
    except Exception:  # noqa: BLE001  (a parent run without its study: no published values)
        return []
    return [Published(**entry) for entry in study.get("published") or []]


@dataclass(frozen=True)
class Shown:
    """A published value in a table cell: the entry, its own key (the paper's test set may
    be another than the column's) and whether it is marked."""

    entry: Published
    key: str
    column: str

    @property
    def value(self) -> float:
        return self.entry.values[self.key]

    @property
    def other_set(self) -> bool:
        return self.key != self.column

    @property
    def marked(self) -> bool:
        return self.entry.note is not None or self.other_set


@dataclass
class TablePublished:
    """The published values a table shows: per row column key -> value, numbered sources."""

    rows: list[dict[str, Shown]]
    sources: list[Published] = field(default_factory=list)

    def number(self, entry: Published) -> int:
        if entry not in self.sources:
            self.sources.append(entry)
        return self.sources.index(entry) + 1

    def keys(self) -> set[str]:
        return {key for row in self.rows for key in row}

    def substitutions(self) -> list[tuple[str, str]]:
        """(the paper's test set, the column's) of values shown under another set."""
        found = {(item.key.split("/")[0], item.column.split("/")[0])
                 for row in self.rows for item in row.values() if item.other_set}
        return sorted(found)


def matches(entry: Published, table: GroupTable, row: Row) -> bool:
    return (entry.arm == row.arm and entry.group in (None, table.name)
            and (entry.stages is None or str(entry.stages) == row.stages))


def column_keys(table: GroupTable) -> list[str]:
    return [metric_key(column) for column in table.columns]


def cell_value(entry: Published, column: str, table_sets: set[str]) -> str | None:
    """The entry's key for this column: the same key, else (a test set this table does not
    test) the same level and metric on the paper's set, shown marked."""
    if column in entry.values:
        return column
    _, level, kind = column.split("/")
    return next((key for key in entry.values if "/" in key and key.split("/")[1:] == [level, kind]
                 and key.split("/")[0] not in table_sets), None)


def table_published(entries: Sequence[Published], table: GroupTable) -> TablePublished:
    columns = column_keys(table)
    table_sets = {column.test_set for column in table.columns}
    rows = []
    for row in table.rows:
        values: dict[str, Shown] = {}
        for entry in (e for e in entries if matches(e, table, row)):
            for column in columns:
                key = cell_value(entry, column, table_sets)
                if key is not None and (column not in values or values[column].other_set
                                        and key == column):
                    values.setdefault(column, Shown(entry, key, column))
            for key in COST_COLUMNS:
                if key in entry.values:
                    values.setdefault(key, Shown(entry, key, key))
        rows.append(values)
    return TablePublished(rows)


def metric_key(column: MetricColumn) -> str:
    return column.metric.removeprefix("test/")


def value_cell(shown: TablePublished, item: Shown | None, form: str) -> str:
    if item is None:
        return ""
    return f"{format(item.value, form)} [{shown.number(item.entry)}]{MARK if item.marked else ''}"


def delta_cell(item: Shown | None, ours: float | None, places: int) -> str:
    if item is None or ours is None:
        return ""
    return f"{ours - item.value:+.{places}f}" + (MARK if item.marked else "")


def row_note(items: Sequence[Shown]) -> str:
    """The notes of a row's published values, and where a value is from another test set."""
    notes = list(dict.fromkeys(item.entry.note for item in items if item.entry.note))
    notes += list(dict.fromkeys(f"{item.column}: published on {item.key.split('/')[0]}"
                                for item in items if item.other_set))
    return " | ".join(notes)


def footnotes(shown: TablePublished) -> str:
    """The numbered sources, and the notes of values under another protocol."""
    if not shown.sources:
        return ""
    lines = ["", "Published values:"]
    for number, entry in enumerate(shown.sources, 1):
        note = f" {MARK} {entry.note} (not the study's protocol)" if entry.note else ""
        lines.append(f"[{number}] {entry.source}.{note}")
    for paper, ours in shown.substitutions():
        lines.append(f"{MARK} under {ours}: the value published on {paper} (another test set)")
    return "\n".join(lines) + "\n"


def chart_marks(shown: TablePublished) -> list[dict[str, tuple[float, bool]]]:
    """Per row: metric key -> (published value, under another protocol) for the chart."""
    return [{key: (item.value, item.marked) for key, item in row.items()} for row in shown.rows]
