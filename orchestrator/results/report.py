"""The study's results as artifacts of its parent run, rebuilt from MLflow alone.

Per group `results/<group>.md` (the paper-style table), `results/<group>.csv` (the same
rows, machine readable) and `results/<group>.png` (PSNR bars); with an `objectives` tag
on the parent also `results/pareto.md` and `results/pareto.csv`; `plots/pareto.png` (test
PSNR against cost, `parent_plots`) and, for tuned arms, Optuna's history and importances
(`optuna_plots`). The same MLflow data always gives the same bytes. The numbers come from
`aggregate`, the chart from `charts`.
"""

from __future__ import annotations

import csv
import io
import tempfile
from collections.abc import Sequence
from pathlib import Path

from mlflow.entities import Run
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient

from orchestrator.results.aggregate import (
    GroupTable,
    Objective,
    ParetoPoint,
    Row,
    RunRecord,
    Stat,
    file_stem,
    pareto_front,
    study_objectives,
    study_tables,
)
from orchestrator.results.charts import group_chart
from orchestrator.results.description import NOTE_TAG, described
from orchestrator.results.optuna_plots import Notes, optuna_files
from orchestrator.results.parent_plots import pareto_panels, pareto_png
from orchestrator.results.proxy import proxy_metrics
from orchestrator.results.published import (
    COST_COLUMNS,
    Published,
    Shown,
    chart_marks,
    delta_cell,
    footnotes,
    metric_key,
    row_note,
    study_published,
    table_published,
    value_cell,
)

PAGE_SIZE = 1000  # runs per search_runs page
KIND_LABELS = {"psnr": "PSNR", "ssim": "SSIM", "psnr_x8": "PSNR x8"}
SUMMARY_HEADERS = ["params", "GFLOPs/MP", "search time (min)", "peak memory (MiB)"]
SUMMARY_FIELDS = ["params", "gflops_per_mp", "search_time_s", "search_peak_mem_mib"]


class ReportError(ValueError):
    """A report target that names no study's parent run."""


def record(run: Run) -> RunRecord:
    return RunRecord(run.info.run_id, run.info.status, dict(run.data.tags),
                     dict(run.data.metrics))


def child_runs(client: MlflowClient, parent: Run) -> list[Run]:
    """Every (non-deleted) child run of the parent, page by page."""
    query = f"tags.mlflow.parentRunId = '{parent.info.run_id}'"
    runs, token = [], None
    while True:
        page = client.search_runs([parent.info.experiment_id], query, max_results=PAGE_SIZE,
                                  page_token=token)
        runs += page
        token = page.token
        if not token:
            return runs


# Number formats of the Markdown tables
def decimals(kind: str) -> int:
    return 4 if kind == "ssim" else 2


def stat_cell(stat: Stat | None, places: int) -> str:
    return f"{stat.mean:.{places}f} ± {stat.std:.{places}f} ({stat.n})" if stat else ""


def number_cell(value: float | None, form: str) -> str:
    return "" if value is None else format(value, form)


def metric_cell(metric: str, value: float) -> str:
    """A Pareto objective in the form of its table column."""
    if metric == "cost/params":
        return format(value, ",.0f")
    return format(value, ".4f" if metric.endswith("/ssim") else ".2f")


def summary_cells(row: Row) -> list[str]:
    search_minutes = None if row.search_time_s is None else row.search_time_s / 60
    return [number_cell(row.params, ",.0f"), number_cell(row.gflops_per_mp, ".2f"),
            number_cell(search_minutes, ".1f"), number_cell(row.search_peak_mem_mib, ".0f")]


def markdown_table(heading: str, headers: Sequence[str], rows: Sequence[Sequence[str]],
                   text_columns: int) -> str:
    """A GitHub table under `## heading`; columns after the first `text_columns` align right."""
    def line(cells: Sequence[str]) -> str:
        return "| " + " | ".join(cell.replace("|", "\\|") for cell in cells) + " |"

    rule = ["---"] * text_columns + ["---:"] * (len(headers) - text_columns)
    body = [line(headers), "|" + "|".join(rule) + "|"] + [line(row) for row in rows]
    return "\n".join([f"## {heading}", "", *body]) + "\n"


def csv_text(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerows([headers, *rows])
    return buffer.getvalue()


def csv_number(value: float | None) -> str:
    """Eight significant digits: exact for parameter counts below 10^8, PSNR to 1e-6 dB."""
    return "" if value is None else f"{value:.8g}"


# A group's table
def failed_cell(row: Row) -> str:
    """How many runs of the row failed, and the first reason."""
    if not row.failures:
        return ""
    reason = row.failures[0]
    return f"{len(row.failures)}: {reason[:80]}{'...' if len(reason) > 80 else ''}"


def row_label(row: Row) -> str:
    """A baseline's row in italics: the reference the table's other rows are read against."""
    return f"*{row.label}*" if row.baseline else row.label


def group_markdown(table: GroupTable, entries: Sequence[Published] = ()) -> str:
    """The table; beside a column the study has published values for, `published` before
    ours and `Δ` (ours - published) after, with the sources under the table."""
    shown = table_published(entries, table)
    keys = shown.keys()
    protocol = ["protocol"] if table.several_protocols else []
    failed = ["failed runs"] if table.has_failures else []
    costs = [key for key in COST_COLUMNS if key in keys]
    headers = ["arm", *protocol]
    for column in table.columns:
        label = f"{column.test_set} {column.level} {KIND_LABELS[column.kind]}"
        headers += [f"{label} published", label, "Δ"] if metric_key(column) in keys else [label]
    headers += [*SUMMARY_HEADERS, *(COST_COLUMNS[key][0] for key in costs), *failed]
    rows = []
    for row, published in zip(table.rows, shown.rows):
        cells = [row_label(row), *([row.protocol[:8]] if protocol else [])]
        for column in table.columns:
            key, places, stat = metric_key(column), decimals(column.kind), row.cells.get(column)
            if key not in keys:
                cells.append(stat_cell(stat, places))
                continue
            item = published.get(key)
            cells += [value_cell(shown, item, f".{places}f"), stat_cell(stat, places),
                      delta_cell(item, stat.mean if stat else None, places)]
        cells += summary_cells(row)
        cells += [value_cell(shown, published.get(key), COST_COLUMNS[key][1]) for key in costs]
        rows.append(cells + ([failed_cell(row)] if failed else []))
    return markdown_table(table.title, headers, rows, 1 + len(protocol)) + footnotes(shown)


def stat_fields(stat: Stat | None) -> list[str]:
    return ["", "", ""] if stat is None else [csv_number(stat.mean), csv_number(stat.std),
                                               str(stat.n)]


def published_fields(published: dict[str, Shown], key: str, ours: float | None) -> list[str]:
    item = published.get(key)
    if item is None:
        return ["", ""]
    return [csv_number(item.value), "" if ours is None else csv_number(ours - item.value)]


def group_csv(table: GroupTable, entries: Sequence[Published] = ()) -> str:
    shown = table_published(entries, table)
    keys = shown.keys()
    costs = [key for key in COST_COLUMNS if key in keys]
    headers = ["arm", "tuned", "protocol"]
    for column in table.columns:
        name = column.metric.removeprefix("test/")
        headers += [f"{name}_mean", f"{name}_std", f"{name}_n"]
        headers += [f"{name}_published", f"{name}_delta"] if name in keys else []
    rows = []
    for row, published in zip(table.rows, shown.rows):
        cells = [row.arm, row.tuned, row.protocol]
        for column in table.columns:
            stat = row.cells.get(column)
            cells += stat_fields(stat)
            if metric_key(column) in keys:
                cells += published_fields(published, metric_key(column),
                                          stat.mean if stat else None)
        cells += [csv_number(getattr(row, name)) for name in SUMMARY_FIELDS]
        cells += [csv_number(published[key].value) if key in published else ""
                  for key in costs]
        used = list(dict.fromkeys(item.entry for item in published.values()))
        cells += [str(len(row.failures)), row.failures[0] if row.failures else "",
                  "true" if row.baseline else "", row.stages,
                  " | ".join(entry.source for entry in used),
                  row_note(list(published.values()))]
        rows.append(cells)
    return csv_text(headers + SUMMARY_FIELDS + [f"{key}_published" for key in costs]
                    + ["failed", "first_failure", "baseline", "stages", "published_source",
                       "published_note"], rows)


# The Pareto front
def pareto_markdown(points: Sequence[ParetoPoint], objectives: Sequence[Objective]) -> str:
    several = len({point.protocol for point in points}) > 1
    protocol = ["protocol"] if several else []
    headers = ["arm", "tuned", "seed", *protocol,
               *(f"{o.metric} ({o.mode})" for o in objectives)]
    rows = [[p.arm, p.tuned, p.seed, *([p.protocol[:8]] if several else []),
             *(metric_cell(o.metric, v) for o, v in zip(objectives, p.values))] for p in points]
    return markdown_table("Pareto front", headers, rows, 3 + len(protocol))


def pareto_csv(points: Sequence[ParetoPoint], objectives: Sequence[Objective]) -> str:
    headers = ["arm", "tuned", "seed", "protocol", *(o.metric for o in objectives)]
    rows = [[p.arm, p.tuned, p.seed, p.protocol, *(csv_number(v) for v in p.values)]
            for p in points]
    return csv_text(headers, rows)


def group_files(table: GroupTable, entries: Sequence[Published] = ()) -> dict[str, bytes]:
    stem = f"results/{file_stem(table.name)}"
    return {f"{stem}.md": group_markdown(table, entries).encode(),
            f"{stem}.csv": group_csv(table, entries).encode(),
            f"{stem}.png": group_chart(table, chart_marks(table_published(entries, table)))}


def report_files(client: MlflowClient, parent_run_id: str) -> tuple[dict[str, bytes], Notes]:
    """Artifact path -> bytes of every results file and plot of the study's parent run, and
    why a plot was left out."""
    parent_run = client.get_run(parent_run_id)
    parent = record(parent_run)
    children = [record(run) for run in child_runs(client, parent_run)]
    files: dict[str, bytes] = {}
    entries = study_published(client, parent_run_id)
    for table in study_tables(parent, children):
        files.update(group_files(table, entries))
    front = pareto_front(parent, children)
    if front is not None:
        objectives = study_objectives(parent)
        files["results/pareto.md"] = pareto_markdown(front, objectives).encode()
        files["results/pareto.csv"] = pareto_csv(front, objectives).encode()
    notes: Notes = {}
    try:  # a picture that cannot be drawn never costs the tables
        panels = pareto_panels(children)
        if panels:
            files["plots/pareto.png"] = pareto_png(panels)
    except Exception as error:  # noqa: BLE001
        notes["plots/pareto.png"] = f"not drawn: {type(error).__name__}: {error}"[:500]
    try:
        plots, skipped = optuna_files(client, children)
    except Exception as error:  # noqa: BLE001
        plots, skipped = {}, {"plots/optuna": f"not drawn: {type(error).__name__}: {error}"[:500]}
    return {**files, **plots}, {**notes, **skipped}


def build_report(client: MlflowClient, parent_run_id: str) -> dict[str, bytes]:
    """Artifact path -> bytes of every results file and plot of the study's parent run."""
    return report_files(client, parent_run_id)[0]


def write_report(client: MlflowClient, parent_run_id: str, out: str | None = None,
                 html: str | None = None) -> list[str]:
    """Build the results files and plots and log them as artifacts of the parent run (same
    paths are overwritten; a plot left out leaves a `plot_note.<path>` tag saying why);
    returns their artifact paths. With `out`, also write them, the pictures of each arm's
    best retrained network (`pictures/<arm>/`) and `provenance.json` to that folder, and
    return those paths instead; with `html`, all of it as one self-contained HTML file."""
    files, notes = report_files(client, parent_run_id)
    children = [record(run) for run in child_runs(client, client.get_run(parent_run_id))]
    for key, value in proxy_metrics(children).items():  # two-stage retraining's effect
        client.log_metric(parent_run_id, key, value)
    written = []
    if out is not None or html is not None:
        from orchestrator.results.html import html_report
        from orchestrator.results.pictures import best_pictures
        from orchestrator.results.provenance import provenance, write_folder

        pictures = best_pictures(client, child_runs(client, client.get_run(parent_run_id)))
        facts = provenance(client, parent_run_id)
        if out is not None:
            written += write_folder(out, {**files, **pictures}, facts)
        if html is not None:
            Path(html).parent.mkdir(parents=True, exist_ok=True)
            Path(html).write_text(html_report({**files, **pictures}, facts))
            written.append(html)
    for path, note in notes.items():
        client.set_tag(parent_run_id, f"plot_note.{path}", note)
    tables = [(path, data.decode()) for path, data in files.items()
              if path.startswith("results/") and path.endswith(".md")]
    current = client.get_run(parent_run_id).data.tags.get(NOTE_TAG, "")
    client.set_tag(parent_run_id, NOTE_TAG, described(current, tables))
    with tempfile.TemporaryDirectory() as folder:
        for artifact, data in files.items():
            directory, _, name = artifact.rpartition("/")
            local = Path(folder) / directory / name
            local.parent.mkdir(parents=True, exist_ok=True)
            local.write_bytes(data)
            client.log_artifact(parent_run_id, str(local), directory or None)
    return written or list(files)


# Which parent run a report is for
def study_run_in(client: MlflowClient, experiment_ids: list[str], query: str) -> str | None:
    """The most recently started run with tag phase=study matching the query."""
    runs = client.search_runs(experiment_ids, f"tags.phase = 'study'{query}", max_results=1,
                              order_by=["attributes.start_time DESC"])
    return runs[0].info.run_id if runs else None


def all_experiment_ids(client: MlflowClient) -> list[str]:
    ids, token = [], None
    while True:
        page = client.search_experiments(max_results=PAGE_SIZE, page_token=token)
        ids += [experiment.experiment_id for experiment in page]
        token = page.token
        if not token:
            return ids


def run_if_exists(client: MlflowClient, run_id: str) -> Run | None:
    try:
        return client.get_run(run_id)
    except MlflowException:
        return None


def study_run_named(client: MlflowClient, name: str) -> str | None:
    """The latest study run of the experiment so named, else of the study so named."""
    experiment = client.get_experiment_by_name(name)
    if experiment is not None and (found := study_run_in(client, [experiment.experiment_id], "")):
        return found
    if "'" in name:  # not expressible in a filter string; no study is named so
        return None
    return study_run_in(client, all_experiment_ids(client), f" and tags.study = '{name}'")


def resolve_parent(client: MlflowClient, target: str) -> str:
    """The parent run id for `target`: a parent run's id, or an experiment's or a study's
    name (then its most recently started study run)."""
    run = run_if_exists(client, target)
    if run is not None:
        phase = run.data.tags.get("phase", "")
        if phase != "study":
            raise ReportError(f"run {target} is not a study's parent run (its phase is "
                              f"'{phase}')")
        return target
    found = study_run_named(client, target)
    if found is None:
        raise ReportError(f"'{target}' names no study run, experiment or study in the "
                          "tracking store")
    return found
