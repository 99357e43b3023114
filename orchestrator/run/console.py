"""What `study` prints around the per-arm status lines (`orchestrator.run.progress`): where it
logs and keeps its checkpoints, and how to browse the runs, before the first trial; the
results tables and where they are at the end."""

from __future__ import annotations

import shlex
from pathlib import Path
from urllib.parse import unquote, urlparse

from mlflow.tracking import MlflowClient

from orchestrator.study import ArmPlan

RESULTS = "results"  # the parent run's folder of tables (orchestrator.results.report)


def ui_command(uri: str, study: str) -> str:
    return (f"python -m orchestrator ui --tracking-uri {shlex.quote(uri)} "
            f"--study {shlex.quote(study)}")


def start_lines(study: str, uri: str, storage: str, parent_run_id: str,
                plans: list[ArmPlan]) -> list[str]:
    units = sum(plan.units() for plan in plans)
    return [f"study {study}: {len(plans)} arm(s), {units} unit(s); MLflow parent run "
            f"{parent_run_id}",
            f"  tracking: {uri}",
            f"  storage:  {storage}",
            f"  browse:   {ui_command(uri, study)}"]


def local_path(uri: str) -> str:
    """A file:// URI as a path; any other URI as it is."""
    parsed = urlparse(uri)
    return str(Path(unquote(parsed.path))) if parsed.scheme == "file" else uri


def results_location(client: MlflowClient, parent_run_id: str) -> str:
    """The parent run's results folder: a local path, or the artifact URI of a server."""
    artifact_uri = client.get_run(parent_run_id).info.artifact_uri.rstrip("/")
    return local_path(f"{artifact_uri}/{RESULTS}")


def results_text(client: MlflowClient, parent_run_id: str) -> str:
    """Every markdown table of the parent run, then where they are (with .csv and .png)."""
    tables = [item.path for item in client.list_artifacts(parent_run_id, RESULTS)
              if item.path.endswith(".md")]
    texts = [Path(client.download_artifacts(parent_run_id, path)).read_text().rstrip()
             for path in tables]
    where = results_location(client, parent_run_id)
    return "\n\n".join([*texts, f"tables (.md, .csv, .png) in {where}"])
