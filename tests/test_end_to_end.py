"""One real study, the quickstart, through Ray Tune + Optuna + MLflow (SQLite in a temp dir),
then its run tree."""

import importlib.metadata
import json
import re
from pathlib import Path

import pytest
import torch

from orchestrator.cli import main
from orchestrator.run.preparing import plan_arms
from orchestrator.study.reading import load_study
from searchspaces.genotype import Genotype
from studyspec.dotted import with_overrides
from trainables.loops.evaluation import protocol_hash
from trainables.tracking.display import FILTER_KEYS, selected

pytestmark = pytest.mark.slow  # starts a study through Ray Tune, Optuna and MLflow

# The README's main job (studies/quickstart.yaml, smoke profile): HiNAS searched at the Optuna
# trial's width (4 or 6) and SSIM weight, each derived network retrained at width 8.
TUNED = ("search.loss.ssim_lambda", "search_space.options.width")


@pytest.fixture(scope="module")
def finished_study(quickstart_store):
    store = quickstart_store
    return store.client, store.runs, store.console, store.study_file


def by_phase(runs, phase):
    return [run for run in runs if run.data.tags.get("phase") == phase]


def test_run_tree_is_parent_with_nested_trials(finished_study):
    _, runs, *_ = finished_study
    (parent,) = by_phase(runs, "study")
    children = [r for r in runs if r is not parent]
    # one retrain run per unit (two Optuna samples); work two units share runs once
    assert len(by_phase(runs, "search")) == 2 and len(by_phase(runs, "retrain")) == 2
    assert all(r.data.tags["mlflow.parentRunId"] == parent.info.run_id for r in children)
    assert all(r.info.status == "FINISHED" for r in runs)
    for run in children:
        tags = run.data.tags
        assert (tags["study"], tags["arm"], tags["method"]) == ("quickstart", "default", "hinas")
        assert tags["eval_protocol"] == protocol_hash() and tags["trial_id"]
        assert run.data.params["search_space.options.num_nodes"] == "2"


def test_search_trials_log_metrics_and_genotype(finished_study):
    client, runs, *_ = finished_study
    lambdas = set()
    for run in by_phase(runs, "search"):
        assert {"val/psnr", "train/loss", "search/alpha_entropy", "genotype/val_psnr"} <= set(
            run.data.metrics)
        history = client.get_metric_history(run.info.run_id, "val/psnr")
        assert [m.step for m in history] == [0, 1]
        path = client.download_artifacts(run.info.run_id, "genotype.json")
        assert Genotype.load(path).arch_hash() == run.data.tags["arch_hash"]
        assert "architecture.txt" in [a.path for a in client.list_artifacts(run.info.run_id)]
        lambdas.add(run.data.params["search.loss.ssim_lambda"])
    assert len(lambdas) == 2  # Optuna proposed two different values


def worked(runs):
    """The retrain runs that did the work (a de-duplicated one links to its source)."""
    retrains = by_phase(runs, "retrain")
    ids = {r.info.run_id for r in retrains}
    linked = [r for r in retrains if "dedup_of" in r.data.tags]
    assert all(r.data.tags["dedup_of"] in ids and not r.data.metrics for r in linked)
    return [r for r in retrains if "dedup_of" not in r.data.tags]


def test_retrain_logs_test_cost_genotype_and_weights(finished_study):
    client, runs, *_ = finished_study
    run = worked(runs)[0]
    metrics = run.data.metrics
    assert 5 < metrics["test/embedded/sigma25/psnr"] < 40
    assert metrics["cost/params"] > 0 and metrics["cost/gflops_per_mp"] > 0
    genotype = Genotype.load(client.download_artifacts(run.info.run_id, "genotype.json"))
    assert genotype.arch_hash() == run.data.tags["arch_hash"]
    source = next(r for r in by_phase(runs, "search")
                  if r.info.run_id == run.data.tags["search_run_id"])
    assert run.data.tags["arch_hash"] == source.data.tags["arch_hash"]
    # the retrain applies its search trial's Optuna picks
    key = "search.loss.ssim_lambda"
    assert run.data.params[key] == source.data.params[key]
    assert not any(k.startswith(("profiles.", "arms.")) for k in run.data.params)
    weights = torch.load(client.download_artifacts(run.info.run_id, "weights/model.pt"),
                         weights_only=True)
    assert sum(t.numel() for t in weights.values() if t.is_floating_point()) >= metrics[
        "cost/params"]


def test_every_epoch_logs_its_data_and_compute_time(finished_study):
    """Each search and retrain epoch: the time making batches and the time of the steps,
    both positive, together within the epoch's time."""
    client, runs, *_ = finished_study
    for run in by_phase(runs, "search") + worked(runs):
        epochs = client.get_metric_history(run.info.run_id, "time/epoch_s")
        data, compute = (client.get_metric_history(run.info.run_id, f"time/{key}_s")
                         for key in ("data", "compute"))
        assert [m.step for m in data] == [m.step for m in compute] == [m.step for m in epochs]
        for epoch, data_s, compute_s in zip(epochs, data, compute):
            assert 0 < data_s.value < compute_s.value
            assert data_s.value + compute_s.value <= epoch.value


def test_parent_holds_study_and_results_table(finished_study):
    client, runs, *_ = finished_study
    (parent,) = by_phase(runs, "study")
    table = Path(client.download_artifacts(parent.info.run_id, "results/results.csv"))
    header, row = table.read_text().splitlines()[:2]
    assert "embedded/sigma25/psnr_mean" in header and row.startswith("default,")
    for name in ("results.md", "results.png"):
        assert client.download_artifacts(parent.info.run_id, f"results/{name}")
    study = Path(client.download_artifacts(parent.info.run_id, "study.yaml")).read_text()
    assert "name: quickstart" in study
    samples = client.list_artifacts(worked(runs)[0].info.run_id, "samples/embedded")
    assert len(samples) == 2 and samples[0].path.endswith("_sigma25.png")
    assert json.loads(parent.data.params["data.test"].replace("'", '"')) == ["embedded"]


def test_report_out_writes_the_tables_pictures_and_provenance(finished_study, tmp_path, capsys):
    """`report --out DIR`: the parent run's tables and pictures as files, and provenance.json
    saying what produced them (this checkout's commit, the command, the versions and data
    hashes the trials logged, the wall time, the machine)."""
    import subprocess

    client, runs, _, study = finished_study
    (parent,) = by_phase(runs, "study")
    uri = client.tracking_uri
    assert main(["report", "quickstart", "--tracking-uri", uri, "--out", str(tmp_path)]) == 0
    written = capsys.readouterr().out.split()
    for name in ("results/results.md", "results/results.csv", "results/results.png",
                 "plots/pareto.png", "provenance.json"):
        assert str(tmp_path / name) in written and (tmp_path / name).stat().st_size > 0
    record = json.loads((tmp_path / "provenance.json").read_text())
    head = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True,
                          cwd=Path(__file__).parent).stdout.strip()
    assert record["commit"] == head and record["parent_run_id"] == parent.info.run_id
    assert record["command"].startswith("python -m orchestrator study ")
    assert record["trials"] == len(runs) - 1 and record["wall_time_s"] > 0
    assert record["packages"]["torch"] == importlib.metadata.version("torch")
    assert len(record["data_manifests"]) >= 2  # search and retrain data of the one arm
    assert record["machine"]["cpus"] >= 1


def test_runs_have_scannable_names_and_few_params(finished_study):
    client, runs, _, study_file = finished_study
    (parent,) = by_phase(runs, "study")
    (plan,) = plan_arms(load_study(str(study_file), "smoke"), str(study_file))
    for run in [r for r in runs if r is not parent]:
        tags, params = run.data.tags, run.data.params
        phase, lam = tags["phase"], float(params["search.loss.ssim_lambda"])
        found = re.fullmatch(rf"default/s0/{phase}/sl=([.0-9e-]+),w=([46])/"
                             rf"{tags['arch_hash'][:6]}", run.info.run_name)
        assert found, run.info.run_name
        assert abs(float(found[1]) - lam) < 0.01
        unselected = [key for key in params if not selected(key, (*FILTER_KEYS, *TUNED))]
        assert unselected == []
        assert 10 <= len(params) <= 20, sorted(params)
        # the retrained network's width (retrain.space_options), not the searched one's
        searched = found[2]
        width = "8" if phase == "retrain" else searched
        assert params["search_space.options.width"] == width
        assert params.get("searched.width") == (searched if phase == "retrain" else None)
        if "dedup_of" in tags:
            continue
        config = json.loads(Path(client.download_artifacts(run.info.run_id, "config.json"))
                            .read_text())
        trial = config["trial"]
        expected = with_overrides(plan.plain_study(), {**trial["tuned"], "seed": trial["seed"]})
        if phase == "retrain":
            expected["retrain"]["noise_used"] = trial["noise"]
        assert config["study"] == expected  # the whole resolved study, kept as an artifact


def test_parent_run_describes_the_study(finished_study):
    _, runs, *_ = finished_study
    (parent,) = by_phase(runs, "study")
    note = parent.data.tags["mlflow.note.content"]
    assert note.startswith("## quickstart") and "`default`" in note and "results/results.md" in note
    assert all(selected(key, FILTER_KEYS) for key in parent.data.params)


def test_the_terminal_says_where_everything_is(finished_study):
    client, runs, console, _ = finished_study
    (parent,) = by_phase(runs, "study")
    lines = console.splitlines()
    assert lines[0] == (f"study quickstart: 1 arm(s), 2 unit(s); MLflow parent run "
                        f"{parent.info.run_id}")
    assert lines[3].strip().startswith("browse:   python -m orchestrator ui --tracking-uri ")
    status = [line for line in lines if re.match(r"\[\d+:\d\d\] default: ", line)]
    # 2 searches and 2 retrains, or 1 when both units derived one architecture (de-duplicated)
    assert status and re.search(r"0 running, [34] done, 0 failed; best val/psnr [.0-9]+ dB "
                                r"\(retrain\)$", status[-1])
    assert "\n## quickstart\n" in console and "| default [ssim_lambda=" in console  # results.md
    folder = Path(parent.info.artifact_uri.removeprefix("file://")) / "results"
    assert lines[-2] == f"tables (.md, .csv, .png) in {folder}"
    assert re.fullmatch(rf"study quickstart: [12] retrained network\(s\) logged to MLflow; "
                        rf"results in {re.escape(str(folder))}", lines[-1])
    assert (folder / "results.md").is_file()


def test_every_run_records_what_produced_it(finished_study):
    """Commit, uncommitted changes, package set, dataset manifest and evaluation protocol on
    every run; the parent also keeps the study file's hash and the manifest itself."""
    import hashlib
    import subprocess

    client, runs, _, study_file = finished_study
    repo = Path(__file__).parent
    head = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True,
                          cwd=repo).stdout.strip()
    changes = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"],
                             capture_output=True, text=True, cwd=repo).stdout.strip()
    (parent,) = by_phase(runs, "study")
    for run in runs:
        tags = run.data.tags
        assert tags["git.commit"] == head and tags["git.dirty"] == str(bool(changes)).lower()
        assert tags["eval_protocol"] == protocol_hash()
        assert tags["package_set"] == parent.data.tags["package_set"]
        assert tags["data.embedded"] == parent.data.tags["data.embedded"]
    assert parent.data.tags["study_file.sha256"] == hashlib.sha256(
        study_file.read_bytes()).hexdigest()[:16]
    manifest = json.loads(Path(client.download_artifacts(
        parent.info.run_id, "provenance/datasets/embedded.json")).read_text())
    assert "train/moon" in manifest and "test/astronaut" in manifest, sorted(manifest)
    assert all(len(digest) == 64 for digest in manifest.values())


def test_report_out_keeps_each_arms_best_pictures(finished_study, tmp_path):
    """`report --out`: the best retrained network of each arm (highest test PSNR) gives its
    architecture diagram and samples, its search the architecture weights."""
    client, runs, *_ = finished_study
    assert main(["report", "quickstart", "--tracking-uri", client.tracking_uri, "--out",
                 str(tmp_path)]) == 0
    best = max(worked(runs), key=lambda r: r.data.metrics["test/embedded/sigma25/psnr"])
    for name in ("architecture.png", "samples.png", "arch_weights.png"):
        assert (tmp_path / "pictures" / "default" / name).stat().st_size > 1000
    expected = Path(client.download_artifacts(best.info.run_id, "plots/architecture.png"))
    assert (tmp_path / "pictures/default/architecture.png").read_bytes() == \
        expected.read_bytes()


def test_the_dry_run_cost_is_within_a_factor_two_of_the_study(quickstart_store, capsys):
    """`--dry-run`'s estimate of the wall time (timed steps x the study's steps, fixed costs
    per trial and per study scaled by the machine's load, the trials that run at once),
    made just before the smoke study's command, against that command's wall time."""
    import os

    store = quickstart_store
    estimate = store.estimate_s
    cores = os.cpu_count() or 1
    if store.load_after > cores + 1.5:  # its own 2 trials, and more: another worker's study
        pytest.skip(f"the machine was loaded beyond the study (load {store.load_after:.1f} on "
                    f"{cores} cores): estimate {estimate:.0f} s, measured {store.wall_s:.0f} s")
    assert 0.5 < estimate / store.wall_s < 2.0, (estimate, store.wall_s)
    assert main(["study", str(store.study_file), "--profile", "smoke", "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "CPU-hours" in out and "arm default: search" in out
    with capsys.disabled():  # shown with -s
        print(f"\nestimate {estimate:.0f} s, measured {store.wall_s:.0f} s of wall time")
