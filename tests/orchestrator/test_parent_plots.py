"""The parent run's plots (pareto.png, Optuna history and importances) and the baseline rows,
rebuilt from a hand-made MLflow store of a tuned study with a `baselines: [dncnn]` arm."""

import csv
import io
import json
from types import SimpleNamespace

import pytest
from mlflow.tracking import MlflowClient
from optuna.trial import TrialState

from orchestrator.results.optuna_plots import arm_study, optuna_files, scored_runs, tuned_arms
from orchestrator.results.parent_plots import pareto_panels
from orchestrator.results.report import build_report, child_runs, record, write_report
from tests.orchestrator.test_tables import Study

PNG = b"\x89PNG\r\n\x1a\n"
WIDTH = "search_space.options.width"
TUNE = {"num_samples": 4, "space": {WIDTH: {"type": "int", "low": 4, "high": 12}}}
COST = "cost/latency_ms_per_mp"
# sample -> (width, [(val/psnr, test PSNR) per seed], params, latency); None: its retrain failed
SAMPLES = {0: (4, [(27.0, 29.0), (27.2, 29.2)], 1e5, 50.0),
           1: (8, [(27.6, 29.8), (27.8, 30.0)], 3e5, 90.0),
           2: (12, [(27.5, 29.5), (27.5, 29.5)], 5e5, 200.0),
           3: (6, None, 2e5, 70.0)}
BASELINE = {"test/set12/sigma25/psnr": 29.6, "val/psnr": 27.4, "cost/params": 556_097.0,
            COST: 400.0}


def tuned_sample(study, number, width, seeds, params, latency):
    unit = f"hinas/t{number}"
    for seed, (val, test) in enumerate(seeds or [(None, None)]):
        labels = {"arm": "hinas", "arm_index": "0", "group": "g", "unit": f"{unit}/s{seed}",
                  "tuned": f"width={width}", "seed": str(seed)}
        search = study.child({**labels, "phase": "search"}, {"val/score": 0.9})
        config = {"trial": {"tuned": {WIDTH: width}}, "study": {"tune": TUNE}}
        study.client.log_text(search, json.dumps(config), "config.json")
        metrics = {"val/psnr": val, "test/set12/sigma25/psnr": test, "cost/params": params,
                   COST: latency} if seeds else None
        study.child({**labels, "phase": "retrain", "eval_protocol": "p1",
                     "search_run_id": search}, metrics, "FINISHED" if seeds else "FAILED")


def tuned_study(study, samples):
    for number, (width, seeds, params, latency) in samples.items():
        tuned_sample(study, number, width, seeds, params, latency)
    study.child({"phase": "retrain", "arm": "baseline-dncnn", "arm_index": "1", "group": "",
                 "unit": "baseline-dncnn/s0", "tuned": "", "seed": "0", "baseline": "true",
                 "eval_protocol": "p1"}, BASELINE)


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    folder = tmp_path_factory.mktemp("parent-plots")
    client = MlflowClient(f"sqlite:///{folder / 'mlflow.db'}")
    experiment = client.create_experiment("tuned", artifact_location=(folder / "a").as_uri())
    groups = json.dumps([{"name": "g", "title": "Table G"}, {"name": "h", "title": "Table H"}])
    study = Study(client, experiment, "tuned", 1_000, groups=groups)
    tuned_study(study, SAMPLES)
    one = Study(client, experiment, "one-sample", 2_000)
    tuned_study(one, {0: SAMPLES[0]})
    children = [record(run) for run in child_runs(client, client.get_run(study.parent))]
    return SimpleNamespace(client=client, parent=study.parent, one=one.parent,
                           children=children, files=build_report(client, study.parent))


def test_write_report_logs_every_plot_on_the_parent_run(store, tmp_path):
    paths = write_report(store.client, store.parent)
    plots = ["plots/pareto.png", "plots/optuna_history.png", "plots/optuna_importance.png"]
    assert [path for path in paths if path.startswith("plots/")] == plots
    store.client.download_artifacts(store.parent, "plots", str(tmp_path))
    for path in plots:
        data = (tmp_path / path).read_bytes()
        assert data.startswith(PNG) and len(data) > 10_000 and data == store.files[path]
    assert build_report(store.client, store.parent) == store.files  # the same bytes again


def test_pareto_panels_hold_every_unit_the_front_and_the_baseline(store):
    panels = pareto_panels(store.children)
    assert [(p.column.metric, p.cost) for p in panels] == [
        ("test/set12/sigma25/psnr", "cost/params"), ("test/set12/sigma25/psnr", COST)]
    by_params = {(p.unit, p.psnr, p.cost, p.front) for p in panels[0].points}
    assert by_params == {("hinas/t0/s0", 29.0, 1e5, False), ("hinas/t0/s1", 29.2, 1e5, True),
                         ("hinas/t1/s0", 29.8, 3e5, False), ("hinas/t1/s1", 30.0, 3e5, True),
                         ("hinas/t2/s0", 29.5, 5e5, False), ("hinas/t2/s1", 29.5, 5e5, False),
                         ("baseline-dncnn/s0", 29.6, 556_097.0, False)}
    (baseline,) = [p for p in panels[1].points if p.baseline]
    assert (baseline.arm, baseline.psnr, baseline.cost) == ("baseline-dncnn", 29.6, 400.0)


def test_the_optuna_study_is_rebuilt_from_configs_and_retrained_validation(store):
    arms = tuned_arms(store.children)
    assert list(arms) == ["hinas"]
    study, spec = arm_study(store.client, arms["hinas"], scored_runs(store.children))
    assert spec.space[WIDTH].high == 12
    assert [(t.params, t.state) for t in study.trials] == [
        ({WIDTH: 4}, TrialState.COMPLETE), ({WIDTH: 8}, TrialState.COMPLETE),
        ({WIDTH: 12}, TrialState.COMPLETE), ({WIDTH: 6}, TrialState.FAIL)]
    assert [t.value for t in study.trials[:3]] == pytest.approx([27.1, 27.7, 27.5])  # seed mean
    assert study.best_trial.params == {WIDTH: 8}


def test_importances_need_two_completed_samples_else_a_note(store):
    children = [record(run) for run in child_runs(store.client, store.client.get_run(store.one))]
    files, notes = optuna_files(store.client, children)
    assert list(files) == ["plots/optuna_history.png"] and files[
        "plots/optuna_history.png"].startswith(PNG)
    assert list(notes) == ["plots/optuna_importance.png"]
    write_report(store.client, store.one)
    tags = store.client.get_run(store.one).data.tags
    assert tags["plot_note.plots/optuna_importance.png"].startswith("importances need two")


def test_the_baseline_is_a_marked_row_of_every_group_table(store):
    assert sorted(store.files) == ["plots/optuna_history.png", "plots/optuna_importance.png",
                                   "plots/pareto.png", "results/g.csv", "results/g.md",
                                   "results/g.png"]  # no table of its own, h never ran
    rows = list(csv.DictReader(io.StringIO(store.files["results/g.csv"].decode())))
    assert [(row["arm"], row["baseline"]) for row in rows][-1] == ("baseline-dncnn", "true")
    assert {row["baseline"] for row in rows[:-1]} == {""}
    assert store.files["results/g.md"].decode().splitlines()[-1].startswith(
        "| *baseline-dncnn* | 29.60 ± 0.00 (1) |")
