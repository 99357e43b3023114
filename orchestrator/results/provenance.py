"""`provenance.json` of a report written to a folder (`report --out`): what produced the
tables, read back from MLflow alone. The parent run's tags give the command, the code's
commit (and whether the checkout had changes), the machine and the wall time; every
trial's `reproducibility.json` gives the package versions, the device and the hash of the
data it was given."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Any

from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient

from trainables.tracking import RECORD_FILE, artifact_run, package_versions

PAGE = 1000


def trial_records(client: MlflowClient, parent) -> tuple[int, list[tuple[Any, dict[str, Any]]]]:
    """How many trial runs the parent has, and (run, its reproducibility record) of those
    that logged one."""
    query = f"tags.mlflow.parentRunId = '{parent.info.run_id}'"
    runs = client.search_runs([parent.info.experiment_id], query, max_results=PAGE)
    found = []
    with tempfile.TemporaryDirectory() as folder:
        for run in runs:
            try:
                path = client.download_artifacts(  # a cached run: what computed its unit
                    artifact_run(client, run.info.run_id, run.data.tags), RECORD_FILE, folder)
            except (MlflowException, OSError):
                continue  # a de-duplicated or failed run logs no record
            found.append((run, json.loads(Path(path).read_text())))
    return len(runs), found


def provenance(client: MlflowClient, parent_run_id: str) -> dict[str, Any]:
    parent = client.get_run(parent_run_id)
    tags, info = parent.data.tags, parent.info
    trials, records = trial_records(client, parent)
    first = records[0][1] if records else {}
    manifests = sorted({f"{run.data.tags.get('arm', '')}/{run.data.tags.get('phase', '')}: "
                        f"{record.get('data_manifest')}" for run, record in records})
    commits = sorted({json.dumps(record.get("git")) for _, record in records})
    ended = info.end_time or info.start_time
    return {
        "study": tags.get("study"), "parent_run_id": parent_run_id,
        "status": info.status, "command": tags.get("command"),
        "commit": tags.get("git.commit") or (first.get("git") or {}).get("commit"),
        "dirty": tags.get("git.dirty"),
        "trial_commits": [json.loads(commit) for commit in commits],
        "packages": first.get("packages") or package_versions(),
        "python": first.get("python"), "devices": sorted({json.dumps(record.get("device"))
                                                        for _, record in records}),
        "machine": json.loads(tags["machine"]) if "machine" in tags else None,
        "eval_protocol": tags.get("eval_protocol"),
        "data_manifests": manifests, "trials": trials,
        "trials_with_record": len(records),
        "wall_time_s": round((ended - info.start_time) / 1000, 1),
    }


def write_folder(out: str | Path, files: dict[str, bytes], record: dict[str, Any]) -> list[str]:
    """The report's files and `provenance.json` under `out`; their paths."""
    written = []
    for artifact, data in {**files, "provenance.json":
                           (json.dumps(record, indent=2) + "\n").encode()}.items():
        path = Path(out) / artifact
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        written.append(str(path))
    return written
