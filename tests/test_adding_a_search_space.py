"""docs/adding-a-search-space.md, followed to the letter: its module and its study are
copied from the page into a folder, and the study runs through the CLI (Ray Tune, Optuna,
MLflow) in a process of its own whose workers find the module on PYTHONPATH. The family
must register, search, derive, retrain and reach the results table; a bad option is one
line naming its key."""

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PAGE = ROOT / "docs" / "adding-a-search-space.md"


def blocks(language: str) -> list[str]:
    return re.findall(rf"```{language}\n(.*?)```", PAGE.read_text(), flags=re.S)


@pytest.fixture()
def folder(tmp_path):
    (module,), (study,) = blocks("python"), blocks("yaml")
    (tmp_path / "my_spaces").mkdir()
    (tmp_path / "my_spaces" / "__init__.py").write_text("")
    (tmp_path / "my_spaces" / "plainmix.py").write_text(module)
    (tmp_path / "plainmix.yaml").write_text(study)
    return tmp_path


def cli(folder: Path, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(folder), str(ROOT)]),
           "RAY_USAGE_STATS_ENABLED": "0"}
    return subprocess.run([sys.executable, "-m", "orchestrator", *args], cwd=folder, env=env,
                          capture_output=True, text=True, timeout=900)


@pytest.mark.slow  # fresh `python -m orchestrator` processes
def test_the_page_builds_a_valid_family(folder):
    done = cli(folder, "validate", "plainmix.yaml", "--set", "search_space.options.depth=0")
    assert done.returncode == 2
    (line,) = done.stderr.strip().splitlines()
    assert "search_space.options.depth" in line
    assert cli(folder, "validate", "plainmix.yaml").returncode == 0


@pytest.mark.slow
def test_the_page_family_runs_through_a_study(folder):
    from mlflow.tracking import MlflowClient

    uri = f"sqlite:///{folder / 'mlflow.db'}"
    done = cli(folder, "study", "plainmix.yaml", "--tracking-uri", uri, "--storage",
               str(folder / "runs"), "--verbose", "0")
    assert done.returncode == 0, done.stderr[-3000:]
    client = MlflowClient(uri)
    experiment = client.get_experiment_by_name("plainmix-demo")
    runs = client.search_runs([experiment.experiment_id])
    phases = sorted(run.data.tags.get("phase", "") for run in runs)
    assert phases == ["retrain", "retrain", "search", "search", "study"]
    assert all(run.info.status == "FINISHED" for run in runs)
    retrains = [run for run in runs if run.data.tags.get("phase") == "retrain"]
    assert all(run.data.metrics["test/embedded/sigma25/psnr"] > 20.2 for run in retrains)
    widths = {run.data.params["search_space.options.width"] for run in retrains}
    assert widths == {"4", "8"}  # Optuna's two samples reached the family's options
    (parent,) = [run for run in runs if run.data.tags["phase"] == "study"]
    table = Path(client.download_artifacts(parent.info.run_id, "results/results.md"))
    text = table.read_text()  # the family's rows of the results table, one per Optuna sample
    assert "| default [width=4] |" in text and "| default [width=8] |" in text, text
