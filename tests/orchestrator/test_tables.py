"""The ablation tables, charts and Pareto front, rebuilt from a hand-made MLflow store."""

import csv
import io
import json
import math
from types import SimpleNamespace

import pytest
from mlflow.entities import Metric
from mlflow.tracking import MlflowClient

from orchestrator.results import report
from orchestrator.results.report import ReportError, build_report, resolve_parent, write_report

P1, P2 = "aaaaaaaa1111", "bbbbbbbb2222"  # evaluation protocol hashes
COST = {"cost/params": 424669.0, "cost/gflops_per_mp": 1.5}
GROUPS = [{"name": "lwas", "title": "Table 1: layer-wise sharing"},
          {"name": "loss", "title": "Table 4: SSIM loss"}]
LWAS_SEEDS = [  # sigma30 PSNR, SSIM; sigma50 PSNR, SSIM (None: that retrain failed); search
    (30.0, 0.85, 27.0, 0.78, 600.0, 1000.0),
    (30.2, 0.86, 27.4, 0.80, 1200.0, 1100.0),
    (30.7, 0.87, None, None, 1800.0, 1300.0),
]


class Study:
    """Writes one study's parent and child runs with the runner's tags."""

    def __init__(self, client, experiment, name, start, **tags):
        self.client, self.experiment = client, experiment
        parent_tags = {"phase": "study", "study": name, **tags}
        self.parent = client.create_run(experiment, tags=parent_tags,
                                        start_time=start).info.run_id

    def child(self, tags, metrics=None, status="FINISHED"):
        run_id = self.client.create_run(self.experiment, tags={
            "mlflow.parentRunId": self.parent, **tags}).info.run_id
        items = [Metric(key, value, 0, 1) for key, value in (metrics or {}).items()]
        self.client.log_batch(run_id, metrics=items)
        if status != "RUNNING":
            self.client.set_terminated(run_id, status)
        return run_id

    def search(self, time_s, peak_mem_mib):
        return self.child({"phase": "search"},
                          {"search/time_s": time_s, "search/peak_mem_mib": peak_mem_mib})

    def retrain(self, arm, index, seed, metrics, status="FINISHED", **tags):
        defaults = {"phase": "retrain", "arm": arm, "arm_index": str(index), "seed": str(seed),
                    "unit": f"{arm}/{tags.get('tuned', '')}/{seed}", "tuned": "",
                    "eval_protocol": P1, "arch_hash": f"hash-{arm}-{seed}"}
        return self.child({**defaults, **tags}, metrics, status)


def scores(level, psnr, ssim, test_set="set12"):
    return {f"test/{test_set}/{level}/psnr": psnr, f"test/{test_set}/{level}/ssim": ssim}


DIVERGED = "FloatingPointError: train/loss is not finite (nan) at epoch 3"


def ablations(study):
    """lwas (index 1) with searches, no-lwas (index 0) over two protocols, lambda0 (index 2)
    tuned twice, one tuning a dedup run of lwas; dncnn (index 3) ungrouped."""
    sigma30_runs = []
    for seed, (psnr30, ssim30, psnr50, ssim50, time_s, mem) in enumerate(LWAS_SEEDS):
        tags = {"group": "lwas", "search_run_id": study.search(time_s, mem)}
        sigma30_runs.append(study.retrain("lwas", 1, seed, {**scores("sigma30", psnr30, ssim30),
                                                            **COST}, noise="sigma30", **tags))
        failed = psnr50 is None
        sigma50 = scores("sigma50", 10.0, 0.1) if failed else scores("sigma50", psnr50, ssim50)
        study.retrain("lwas", 1, seed, {**sigma50, **COST}, "FAILED" if failed else "FINISHED",
                      noise="sigma50", **tags)
    study.client.log_metric(sigma30_runs[2], "test/set12/sigma30/psnr", 25.0, step=0)  # not latest
    for seed, (protocol, psnr, ssim) in enumerate([(P1, 29.0, 0.80), (P2, 31.0, 0.82)]):
        study.retrain("no-lwas", 0, seed, {**scores("sigma30", psnr, ssim),
                                           "cost/params": 100000.0, "cost/gflops_per_mp": 1.0},
                      group="lwas", eval_protocol=protocol, search_run_id="")
    tuned = {"group": "loss", "tuned": "lr=0.1", "search_run_id": study.search(300.0, 900.0)}
    study.retrain("lambda0", 2, 0, None, dedup_of=sigma30_runs[0], **tuned)
    tuned = {"group": "loss", "tuned": "lr=0.01", "search_run_id": study.search(360.0, 950.0)}
    study.retrain("lambda0", 2, 0, {**scores("sigma30", 29.5, 0.84), **COST,
                                    "test/set12/sigma30/psnr_x8": 29.7}, **tuned)
    study.retrain("lambda0", 2, 1, scores("sigma30", 1.0, 0.1), "RUNNING", **tuned)
    study.retrain("diverged", 4, 0, None, "FAILED", group="lwas", failure=DIVERGED)
    for seed, group in enumerate(["", None]):  # ungrouped: empty or absent tag
        levels = {**scores("sigma15", 32.8 + seed / 5, 0.90), **scores("sigma5", 37.0, 0.95),
                  **scores("q10", 29.1, 0.80, "classic5")}
        study.retrain("dncnn", 3, seed, levels, **({} if group is None else {"group": group}))


def fronts(study):
    """Four units on test PSNR (max) vs params (min): C is dominated by A."""
    units = {"A": [(30.0, 1e5)], "B": [(30.8, 3e5), (31.2, 3e5)], "C": [(29.5, 2e5)],
             "D": [(29.0, 5e4)]}
    for seed, (unit, points) in enumerate(units.items()):
        for psnr, params in points:
            study.retrain(f"arm-{unit}", seed, seed, {"test/set12/sigma25/psnr": psnr,
                                                      "cost/params": params}, unit=unit)
    study.retrain("arm-C", 2, 2, {"test/set12/sigma25/psnr": 40.0, "cost/params": 1.0},
                  "FAILED", unit="C")


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    """One store for the module: creating an MLflow SQLite schema takes seconds."""
    folder = tmp_path_factory.mktemp("tables")
    client = MlflowClient(f"sqlite:///{folder / 'mlflow.db'}")
    artifacts = (folder / "mlartifacts").as_uri()
    ablate = client.create_experiment("ablate", artifact_location=artifacts)
    Study(client, ablate, "ablate", 1_000, groups=json.dumps(GROUPS))  # an earlier invocation
    study = Study(client, ablate, "ablate", 2_000, groups=json.dumps(GROUPS))
    ablations(study)
    objectives = [{"metric": "test/set12/sigma25/psnr", "mode": "max"},
                  {"metric": "cost/params", "mode": "min"}]
    other = client.create_experiment("fronts-experiment", artifact_location=artifacts)
    front = Study(client, other, "fronts-study", 3_000, objectives=json.dumps(objectives))
    fronts(front)
    return SimpleNamespace(client=client, parent=study.parent, front=front.parent,
                           files=build_report(client, study.parent))


def table(store, group):
    return list(csv.DictReader(io.StringIO(store.files[f"results/{group}.csv"].decode())))


def markdown_rows(store, group):
    lines = store.files[f"results/{group}.md"].decode().splitlines()
    return [[cell.strip() for cell in line.strip("|").split(" | ")] for line in lines[2:]]


def test_one_markdown_csv_and_chart_per_group_titled_in_study_order(store):
    assert list(store.files) == [f"results/{group}.{kind}" for group in ("lwas", "loss", "results")
                                 for kind in ("md", "csv", "png")] + ["plots/pareto.png"]
    headings = [store.files[f"results/{group}.md"].decode().split("\n")[0]
                for group in ("lwas", "loss", "results")]
    assert headings == ["## Table 1: layer-wise sharing", "## Table 4: SSIM loss", "## ablate"]
    assert store.files["results/lwas.png"].startswith(b"\x89PNG\r\n\x1a\n")
    assert b"Software" not in store.files["results/lwas.png"]


def test_rows_give_mean_sample_std_and_n_of_finished_runs(store):
    lwas = next(row for row in table(store, "lwas") if row["arm"] == "lwas")
    assert float(lwas["set12/sigma30/psnr_mean"]) == pytest.approx(30.3)
    assert float(lwas["set12/sigma30/psnr_std"]) == pytest.approx(math.sqrt(0.13))  # ddof=1
    assert lwas["set12/sigma30/psnr_n"] == "3"
    assert float(lwas["set12/sigma50/psnr_mean"]) == pytest.approx(27.2)  # FAILED seed 2 out
    assert lwas["set12/sigma50/psnr_n"] == "2"
    assert float(lwas["set12/sigma30/ssim_std"]) == pytest.approx(0.01)
    assert markdown_rows(store, "lwas")[4][2:6] == [
        "30.30 ± 0.36 (3)", "0.8600 ± 0.0100 (3)", "27.20 ± 0.28 (2)", "0.7900 ± 0.0141 (2)"]


def test_rows_follow_arm_index_and_protocols_are_never_averaged(store):
    rows = table(store, "lwas")
    assert [(row["arm"], row["protocol"]) for row in rows] == [
        ("no-lwas", P1), ("no-lwas", P2), ("lwas", P1), ("diverged", P1)]
    assert [row["set12/sigma30/psnr_mean"] for row in rows[:2]] == ["29", "31"]
    header = markdown_rows(store, "lwas")[0]
    assert header[:3] == ["arm", "protocol", "set12 sigma30 PSNR"]
    assert [row[1] for row in markdown_rows(store, "lwas")[2:]] == ["aaaaaaaa", "bbbbbbbb",
                                                                    P1[:8], P1[:8]]
    assert "protocol" not in markdown_rows(store, "loss")[0]  # one protocol: no column


def test_search_cost_joins_through_the_search_run_id(store):
    no_lwas, _, lwas, _ = table(store, "lwas")
    assert float(lwas["search_time_s"]) == pytest.approx(1200.0)
    assert float(lwas["search_peak_mem_mib"]) == pytest.approx(3400 / 3)
    assert no_lwas["search_time_s"] == no_lwas["search_peak_mem_mib"] == ""
    assert markdown_rows(store, "lwas")[4][-5:-1] == ["424,669", "1.50", "20.0", "1133"]
    assert markdown_rows(store, "lwas")[2][-5:-1] == ["100,000", "1.00", "", ""]


def test_failed_runs_are_marked_on_their_row_with_the_first_reason(store):
    """lwas's FAILED sigma-50 run (no reason recorded) and a diverged arm with nothing
    finished: each row says how many of its runs failed and why."""
    rows = {(row["arm"], row["protocol"]): row for row in table(store, "lwas")}
    diverged, lwas = rows["diverged", P1], rows["lwas", P1]
    assert (diverged["failed"], diverged["first_failure"]) == ("1", DIVERGED)
    assert diverged["set12/sigma30/psnr_n"] == ""
    assert (lwas["failed"], lwas["first_failure"]) == ("1", "no reason recorded")
    assert rows["no-lwas", P1]["failed"] == "0"
    markdown = markdown_rows(store, "lwas")
    assert markdown[0][-1] == "failed runs"
    assert markdown[-1][0] == "diverged" and markdown[-1][-1] == f"1: {DIVERGED}"
    assert markdown[4][-1] == "1: no reason recorded" and markdown[2][-1] == ""
    assert "failed runs" not in markdown_rows(store, "loss")[0]  # none failed: no column


def test_a_dedup_run_counts_in_its_row_with_its_sources_metrics(store):
    assert store.files["results/loss.md"].decode() == (
        "## Table 4: SSIM loss\n"
        "\n"
        "| arm | set12 sigma30 PSNR | set12 sigma30 SSIM | set12 sigma30 PSNR x8 | params "
        "| GFLOPs/MP | search time (min) | peak memory (MiB) |\n"
        "|---|---:|---:|---:|---:|---:|---:|---:|\n"
        "| lambda0 [lr=0.01] | 29.50 ± 0.00 (1) | 0.8400 ± 0.0000 (1) | 29.70 ± 0.00 (1) "
        "| 424,669 | 1.50 | 6.0 | 950 |\n"
        "| lambda0 [lr=0.1] | 30.00 ± 0.00 (1) | 0.8500 ± 0.0000 (1) |  "
        "| 424,669 | 1.50 | 5.0 | 900 |\n")  # the RUNNING seed 1 of lr=0.01 is not counted


def test_ungrouped_arms_sort_levels_numerically(store):
    header = markdown_rows(store, "results")[0]
    assert header[1:-4:2] == ["classic5 q10 PSNR", "set12 sigma5 PSNR", "set12 sigma15 PSNR"]
    (dncnn,) = table(store, "results")
    assert (dncnn["arm"], dncnn["tuned"], dncnn["set12/sigma15/psnr_n"]) == ("dncnn", "", "2")
    assert float(dncnn["set12/sigma15/psnr_mean"]) == pytest.approx(32.9)


def test_pareto_front_keeps_the_non_dominated_units(store):
    files = build_report(store.client, store.front)
    rows = list(csv.DictReader(io.StringIO(files["results/pareto.csv"].decode())))
    assert [(row["arm"], row["seed"]) for row in rows] == [("arm-B", "1"), ("arm-A", "0"),
                                                           ("arm-D", "3")]
    assert float(rows[0]["test/set12/sigma25/psnr"]) == pytest.approx(31.0)  # unit mean
    assert files["results/pareto.md"].decode().splitlines()[2:5] == [
        "| arm | tuned | seed | test/set12/sigma25/psnr (max) | cost/params (min) |",
        "|---|---|---|---:|---:|", "| arm-B |  | 1 | 31.00 | 300,000 |"]
    assert "results/pareto.csv" not in store.files  # no objectives tag, no front


def test_report_bytes_are_stable_across_pages_and_logged_as_artifacts(store, tmp_path,
                                                                      monkeypatch):
    monkeypatch.setattr(report, "PAGE_SIZE", 4)  # children come in several pages
    assert build_report(store.client, store.parent) == store.files
    for _ in range(2):  # the second write overwrites the same paths
        paths = write_report(store.client, store.parent)
    assert paths == list(store.files)
    folder = store.client.download_artifacts(store.parent, "results", str(tmp_path))
    store.client.download_artifacts(store.parent, "plots", str(tmp_path))
    logged = {f"{path.parent.name}/{path.name}": path.read_bytes()
              for path in tmp_path.glob("*/*")}
    assert folder.endswith("results") and logged == store.files


def test_resolve_parent_by_id_experiment_or_study_name(store):
    client = store.client
    assert resolve_parent(client, store.parent) == store.parent
    assert resolve_parent(client, "ablate") == store.parent  # the latest of two invocations
    assert resolve_parent(client, "fronts-study") == store.front  # by the study tag
    with pytest.raises(ReportError, match=r"^'no-such-study' names no study run[^\n]*$"):
        resolve_parent(client, "no-such-study")
    child = client.search_runs([client.get_run(store.parent).info.experiment_id],
                               "tags.phase = 'retrain'", max_results=1)[0].info.run_id
    with pytest.raises(ReportError, match="not a study's parent run"):
        resolve_parent(client, child)


def test_a_group_name_never_leads_an_artifact_out_of_results():
    from orchestrator.results.report import file_stem

    assert file_stem("hinas-table1") == "hinas-table1"
    assert file_stem("../../escaped") == "_.._escaped"
    assert file_stem("..") == "_" and "/" not in file_stem("a/b\\c")
