"""The papers' ablation tables and the Pareto front, computed from run records alone.

A `RunRecord` is what a run of the study left in MLflow (status, tags, latest metric
values); `report` reads them and renders what is computed here. The conventions are
the runner's: the parent run's `study`, `groups` and `objectives` tags; on child runs
`phase`, `arm`, `group`, `arm_index`, `tuned`, `eval_protocol`, `unit`, `seed`,
`search_run_id`, `dedup_of` and `failure`. Only FINISHED runs count; FAILED search and
retrain runs are counted on their row with their reasons, so a table shows what is missing.
Runs of different evaluation protocols are never averaged together, nor compared on one
Pareto front.
"""

from __future__ import annotations

import dataclasses
import json
import re
import statistics
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

FINISHED = "FINISHED"
FAILED = "FAILED"
UNGROUPED = "results"  # the group of arms without a `group` tag
BASELINE = "\0baseline"  # the runs of baseline arms, before they join every group
KINDS = ("psnr", "ssim", "psnr_x8")  # test metric kinds, in column order
MODES = ("max", "min")


def file_stem(name: str) -> str:
    """A group's or an arm's name as one path component: a tag read back from MLflow cannot
    lead an artifact out of its folder."""
    stem = re.sub(r"[^A-Za-z0-9_.=+-]", "_", name).lstrip(".")
    return stem or "_"


@dataclass(frozen=True)
class RunRecord:
    run_id: str
    status: str
    tags: Mapping[str, str]
    metrics: Mapping[str, float]  # the latest value of each key

    def tag(self, key: str) -> str:
        return self.tags.get(key) or ""


@dataclass(frozen=True)
class Stat:
    mean: float
    std: float  # sample standard deviation (ddof=1), 0 for a single value
    n: int


@dataclass(frozen=True)
class MetricColumn:
    """One test metric column: `test/<test_set>/<level>/<kind>`."""

    test_set: str
    level: str
    kind: str

    @property
    def metric(self) -> str:
        return f"test/{self.test_set}/{self.level}/{self.kind}"

    def sort_key(self) -> tuple:
        return self.test_set, level_key(self.level), KINDS.index(self.kind)


@dataclass(frozen=True)
class Row:
    """One (arm, tuned label, evaluation protocol, retrained stages) of a group."""

    arm: str
    tuned: str
    protocol: str
    cells: Mapping[MetricColumn, Stat]
    params: float | None
    gflops_per_mp: float | None
    search_time_s: float | None  # mean over the distinct search runs the row retrains
    search_peak_mem_mib: float | None
    failures: tuple[str, ...] = ()  # the `failure` tag of each FAILED run of the row
    baseline: bool = False  # a `baselines:` arm's row (it appears in every table)
    stages: str = ""  # retrain.stages: the unfolded stages of the row's runs ("" : searched)

    @property
    def label(self) -> str:
        label = f"{self.arm} [{self.tuned}]" if self.tuned else self.arm
        return f"{label} T={self.stages}" if self.stages else label


@dataclass(frozen=True)
class GroupTable:
    name: str
    title: str
    columns: tuple[MetricColumn, ...]
    rows: tuple[Row, ...]

    @property
    def several_protocols(self) -> bool:
        return len({row.protocol for row in self.rows}) > 1

    @property
    def has_failures(self) -> bool:
        return any(row.failures for row in self.rows)


@dataclass(frozen=True)
class Objective:
    metric: str
    mode: str  # "max" | "min"

    def oriented(self, value: float) -> float:
        """The value on a larger-is-better scale."""
        return value if self.mode == "max" else -value


@dataclass(frozen=True)
class ParetoPoint:
    """One unit (a searched or given architecture retrained over its noise levels)."""

    unit: str
    arm: str
    tuned: str
    seed: str
    protocol: str
    values: tuple[float, ...]  # the objectives' means over the unit's retrain runs


def level_key(level: str) -> tuple[str, float]:
    """Levels sort by their prefix, then numerically: sigma15 < sigma25 < sigma50; q10 < q20."""
    match = re.fullmatch(r"(.*?)(\d+(?:\.\d+)?)", level)
    return (match.group(1), float(match.group(2))) if match else (level, -1.0)


def arm_position(run: RunRecord) -> tuple[int, int]:
    """The arm's place in the study (`arm_index`); runs without one come last."""
    text = run.tag("arm_index")
    return (0, int(text)) if text.lstrip("-").isdigit() else (1, 0)


def summarize(values: Sequence[float]) -> Stat | None:
    if not values:
        return None
    std = statistics.stdev(values) if len(values) > 1 else 0.0
    return Stat(statistics.fmean(values), std, len(values))


def mean_of(runs: Iterable[RunRecord], metric: str) -> float | None:
    values = [run.metrics[metric] for run in runs if metric in run.metrics]
    return statistics.fmean(values) if values else None


def bucket(items: Iterable[Any], key: Callable[[Any], Any]) -> dict[Any, list[Any]]:
    """Items by key, each list in the items' order."""
    buckets: dict[Any, list[Any]] = {}
    for item in items:
        buckets.setdefault(key(item), []).append(item)
    return buckets


def parent_list(parent: RunRecord, tag: str) -> list[dict[str, Any]]:
    """A JSON list tag of the parent run; an absent tag is an empty list."""
    text = parent.tag(tag)
    value = json.loads(text) if text else []
    if not isinstance(value, list) or not all(isinstance(item, dict) for item in value):
        raise ValueError(f"parent run {parent.run_id}: tag '{tag}' is not a JSON list of objects")
    return value


def source_metrics(run: RunRecord, finished: Mapping[str, RunRecord]) -> Mapping[str, float]:
    """A dedup run's metrics are those of the finished run it points to (chains followed)."""
    seen: set[str] = set()
    while run.tag("dedup_of"):
        source = finished.get(run.tag("dedup_of"))
        if source is None or run.run_id in seen:
            return {}
        seen.add(run.run_id)
        run = source
    return run.metrics


def finished_runs(children: Iterable[RunRecord]) -> dict[str, RunRecord]:
    """The FINISHED children by run id, in run id order (means do not depend on paging)."""
    finished = [run for run in children if run.status == FINISHED]
    return {run.run_id: run for run in sorted(finished, key=lambda run: run.run_id)}


def retrained(finished: Mapping[str, RunRecord]) -> list[RunRecord]:
    """The finished retrain runs, dedup runs carrying the metrics of their source."""
    return [dataclasses.replace(run, metrics=source_metrics(run, finished))
            for run in finished.values()
            if run.tag("phase") == "retrain" and run.tag("proxy") != "short"]


def parse_metric_column(metric: str) -> MetricColumn | None:
    parts = metric.split("/")
    if len(parts) == 4 and parts[0] == "test" and parts[3] in KINDS:
        return MetricColumn(parts[1], parts[2], parts[3])
    return None


def group_columns(runs: Iterable[RunRecord]) -> tuple[MetricColumn, ...]:
    """PSNR and SSIM for every test set x level found; PSNR x8 where some run has it."""
    found = {column for run in runs for key in run.metrics if (column := parse_metric_column(key))}
    pairs = {(column.test_set, column.level) for column in found}
    columns = found | {MetricColumn(*pair, kind) for pair in pairs for kind in ("psnr", "ssim")}
    return tuple(sorted(columns, key=MetricColumn.sort_key))


def failed_runs(children: Iterable[RunRecord]) -> list[RunRecord]:
    """The FAILED search and retrain runs, in run id order."""
    return sorted((run for run in children if run.status == FAILED
                   and run.tag("phase") in ("search", "retrain")), key=lambda run: run.run_id)


def table_row(runs: list[RunRecord], columns: Sequence[MetricColumn],
              searches: Mapping[str, RunRecord], failed: Sequence[RunRecord] = ()) -> Row:
    """A row of the finished retrain `runs` (maybe none) and the row's `failed` runs."""
    cells = {column: stat for column in columns
             if (stat := summarize([run.metrics[column.metric] for run in runs
                                    if column.metric in run.metrics]))}
    linked = [searches[run_id] for run_id in sorted({run.tag("search_run_id") for run in runs})
              if run_id in searches]
    first = (list(runs) + list(failed))[0]
    return Row(first.tag("arm"), first.tag("tuned"), first.tag("eval_protocol"), cells,
               mean_of(runs, "cost/params"), mean_of(runs, "cost/gflops_per_mp"),
               mean_of(linked, "search/time_s"), mean_of(linked, "search/peak_mem_mib"),
               tuple(run.tag("failure") or "no reason recorded" for run in failed),
               is_baseline(first), first.tag("stages"))


def row_key(run: RunRecord) -> tuple:
    stages = run.tag("stages")
    return (arm_position(run), run.tag("arm"), run.tag("tuned"), run.tag("eval_protocol"),
            int(stages) if stages.isdigit() else 0)


def group_table(name: str, title: str, runs: list[RunRecord],
                searches: Mapping[str, RunRecord], failed: Sequence[RunRecord] = ()) -> GroupTable:
    columns = group_columns(runs)
    rows, failures = bucket(runs, row_key), bucket(failed, row_key)
    keys = sorted(set(rows) | set(failures))
    return GroupTable(name, title, columns, tuple(
        table_row(rows.get(key, []), columns, searches, failures.get(key, [])) for key in keys))


def group_titles(parent: RunRecord) -> dict[str, str]:
    """Group name -> title in study order; the ungrouped arms are titled by the study."""
    titles = {str(item.get("name", "")): str(item.get("title") or item.get("name", ""))
              for item in parent_list(parent, "groups")}
    return {UNGROUPED: parent.tag("study") or UNGROUPED, **titles}


def study_tables(parent: RunRecord, children: Iterable[RunRecord]) -> list[GroupTable]:
    """One table per group holding finished retrain runs or failed runs: declared groups in
    study order, then any others by name, `results` (the ungrouped arms) in its place; the
    baseline arms' rows in each (in `results` when nothing else ran)."""
    children = list(children)
    finished = finished_runs(children)
    searches = {key: run for key, run in finished.items() if run.tag("phase") == "search"}
    groups, failed = bucket(retrained(finished), table_of), bucket(failed_runs(children), table_of)
    base, base_failed = groups.pop(BASELINE, []), failed.pop(BASELINE, [])
    titles = group_titles(parent)
    declared = [name for name in titles if name != UNGROUPED]
    present = (set(groups) | set(failed)) or ({UNGROUPED} if base or base_failed else set())
    order = [name for name in declared if name in present]
    order += sorted(name for name in present if name not in declared)
    return [group_table(name, titles.get(name, name), groups.get(name, []) + base, searches,
                        failed.get(name, []) + base_failed) for name in order]


def is_baseline(run: RunRecord) -> bool:
    """A run of a `baselines:` arm: its rows join every table of the study."""
    return run.tag("baseline") == "true"


def table_of(run: RunRecord) -> str:
    return BASELINE if is_baseline(run) else run.tag("group") or UNGROUPED


def study_objectives(parent: RunRecord) -> list[Objective]:
    objectives = [Objective(str(item.get("metric", "")), str(item.get("mode", "")))
                  for item in parent_list(parent, "objectives")]
    wrong = next((o for o in objectives if not o.metric or o.mode not in MODES), None)
    if wrong is not None:
        raise ValueError(f"parent run {parent.run_id}: objective {wrong} needs a metric and a "
                         f"mode of {' or '.join(MODES)}")
    return objectives


def unit_point(unit: str, runs: list[RunRecord],
               objectives: Sequence[Objective]) -> ParetoPoint | None:
    """The unit's mean of every objective; None when one of them was never logged."""
    means = [mean_of(runs, objective.metric) for objective in objectives]
    if any(mean is None for mean in means):
        return None
    first = runs[0]
    return ParetoPoint(unit, first.tag("arm"), first.tag("tuned"), first.tag("seed"),
                       first.tag("eval_protocol"), tuple(means))


def unit_of(run: RunRecord) -> str:
    """A retrained network: its unit, and its stages where retrain.stages unrolls it."""
    unit = run.tag("unit") or run.run_id
    return f"{unit} T={run.tag('stages')}" if run.tag("stages") else unit


def dominates(better: ParetoPoint, worse: ParetoPoint, objectives: Sequence[Objective]) -> bool:
    pairs = [(o.oriented(b), o.oriented(w))
             for o, b, w in zip(objectives, better.values, worse.values)]
    return all(b >= w for b, w in pairs) and any(b > w for b, w in pairs)


def non_dominated(points: list[ParetoPoint], objectives: Sequence[Objective]) -> list[ParetoPoint]:
    return [point for point in points
            if not any(dominates(other, point, objectives) for other in points)]


def pareto_front(parent: RunRecord, children: Iterable[RunRecord]) -> list[ParetoPoint] | None:
    """The non-dominated units under the parent's `objectives` (None without that tag), one
    front per evaluation protocol, sorted by protocol then best first on each objective."""
    objectives = study_objectives(parent)
    if not objectives:
        return None
    units = bucket(retrained(finished_runs(children)), unit_of)
    points = [point for unit, runs in units.items()
              if (point := unit_point(unit, runs, objectives))]
    front = [point for members in bucket(points, lambda point: point.protocol).values()
             for point in non_dominated(members, objectives)]
    return sorted(front, key=lambda point: (
        point.protocol, [-o.oriented(v) for o, v in zip(objectives, point.values)],
        point.arm, point.tuned, point.seed, point.unit))
