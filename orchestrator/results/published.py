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


@dataclass
class TablePublished:
    """The published values a table shows: per row key -> entry, and the numbered sources."""

    rows: list[dict[str, Published]]
    sources: list[Published] = field(default_factory=list)

    def number(self, entry: Published) -> int:
        if entry not in self.sources:
            self.sources.append(entry)
        return self.sources.index(entry) + 1

    def keys(self) -> set[str]:
        return {key for row in self.rows for key in row}


def matches(entry: Published, table: GroupTable, row: Row) -> bool:
    return (entry.arm == row.arm and entry.group in (None, table.name)
            and (entry.stages is None or str(entry.stages) == row.stages))


def table_published(entries: Sequence[Published], table: GroupTable) -> TablePublished:
    rows = []
    for row in table.rows:
        values: dict[str, Published] = {}
        for entry in entries:
            if matches(entry, table, row):
                for key in entry.values:
                    values.setdefault(key, entry)
        rows.append(values)
    return TablePublished(rows)


def metric_key(column: MetricColumn) -> str:
    return column.metric.removeprefix("test/")


def value_cell(shown: TablePublished, entry: Published | None, key: str, form: str) -> str:
    if entry is None:
        return ""
    mark = MARK if entry.note else ""
    return f"{format(entry.values[key], form)} [{shown.number(entry)}]{mark}"


def delta_cell(entry: Published | None, key: str, ours: float | None, places: int) -> str:
    if entry is None or ours is None:
        return ""
    return f"{ours - entry.values[key]:+.{places}f}" + (MARK if entry.note else "")


def footnotes(shown: TablePublished) -> str:
    """The numbered sources, and the notes of values under another protocol."""
    if not shown.sources:
        return ""
    lines = ["", "Published values:"]
    for number, entry in enumerate(shown.sources, 1):
        note = f" {MARK} {entry.note} (not the study's protocol)" if entry.note else ""
        lines.append(f"[{number}] {entry.source}.{note}")
    return "\n".join(lines) + "\n"


def chart_marks(shown: TablePublished) -> list[dict[str, tuple[float, bool]]]:
    """Per row: metric key -> (published value, under another protocol) for the chart."""
    return [{key: (entry.values[key], entry.note is not None) for key, entry in row.items()}
            for row in shown.rows]
