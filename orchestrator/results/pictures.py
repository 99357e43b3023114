"""The pictures of each arm's best retrained network for a report written to a folder
(`report --out`): its architecture diagram and denoised samples, and its search's
architecture-weight heatmaps, copied from the trial runs' `plots/`."""

from __future__ import annotations

import tempfile
from pathlib import Path

from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient

from orchestrator.results.aggregate import file_stem
from trainables.tracking import artifact_run

RETRAIN_PLOTS = ("architecture.png", "samples.png")
SEARCH_PLOTS = ("arch_weights.png",)


def test_psnr(metrics: dict[str, float]) -> float | None:
    """The mean of a run's test PSNRs (each test set and level), None without any."""
    values = [value for key, value in metrics.items()
              if key.startswith("test/") and key.endswith("/psnr")]
    return sum(values) / len(values) if values else None


def best_runs(runs) -> dict[str, object]:
    """arm -> its FINISHED retrain run with the highest mean test PSNR."""
    best: dict[str, object] = {}
    for run in runs:
        tags = run.data.tags
        score = test_psnr(run.data.metrics)
        if tags.get("phase") != "retrain" or run.info.status != "FINISHED" or score is None:
            continue
        arm = tags.get("arm", "")
        if arm not in best or score > test_psnr(best[arm].data.metrics):
            best[arm] = run
    return best


def plot_bytes(client: MlflowClient, run_id: str, name: str, folder: str) -> bytes | None:
    try:
        return Path(client.download_artifacts(artifact_run(client, run_id), f"plots/{name}",
                                              folder)).read_bytes()
    except (MlflowException, OSError):
        return None


def best_pictures(client: MlflowClient, runs) -> dict[str, bytes]:
    """`pictures/<arm>/<plot>` -> PNG bytes of each arm's best retrain run (and its search)."""
    files: dict[str, bytes] = {}
    with tempfile.TemporaryDirectory() as folder:
        for arm, run in sorted(best_runs(runs).items()):
            stem = file_stem(arm)
            sources = [(run.info.run_id, RETRAIN_PLOTS)]
            search = run.data.tags.get("search_run_id")
            if search:
                sources.append((search, SEARCH_PLOTS))
            for run_id, names in sources:
                for name in names:
                    data = plot_bytes(client, run_id, name, folder)
                    if data is not None:
                        files[f"pictures/{stem}/{name}"] = data
    return files
