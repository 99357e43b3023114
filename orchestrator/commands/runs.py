"""Looking up one trial run and what it logged, for `compare`, `export` and `rerun`: every
miss (an unknown run id, a run without the artifact a command needs) is one line."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from mlflow.entities import Run
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient

from orchestrator.results import all_experiment_ids, run_if_exists, study_run_in
from searchspaces.genotype import Genotype
from trainables.tracking import CONFIG_FILE, RECORD_FILE, artifact_run

GENOTYPE_FILE = "genotype.json"
WEIGHTS_FILE = "weights/model.pt"


class RunError(ValueError):
    """A run id that names no run, or a run without what the command needs."""


def find_run(client: MlflowClient, run_id: str) -> Run:
    run = run_if_exists(client, run_id)
    if run is None:
        raise RunError(f"'{run_id}' names no run in the tracking store {client.tracking_uri}")
    return run


def run_label(run: Run) -> str:
    return f"run {run.info.run_id} ({run.info.run_name})"


def artifact(client: MlflowClient, run: Run, path: str, folder: str | Path | None = None
             ) -> Path:
    """The artifact downloaded (into `folder`, else a temporary one); one line when absent."""
    try:
        local = client.download_artifacts(artifact_run(client, run.info.run_id, run.data.tags),
                                          path, str(folder) if folder else None)
    except (MlflowException, OSError) as error:
        first = (str(error).splitlines() or [""])[0][:200]
        raise RunError(f"{run_label(run)} has no artifact {path} ({first})") from None
    return Path(local)


def run_genotype(client: MlflowClient, run: Run) -> Genotype:
    """The architecture a search run derived or a retrain run trained."""
    return Genotype.load(artifact(client, run, GENOTYPE_FILE))


def run_config(client: MlflowClient, run: Run) -> dict[str, Any]:
    """`config.json`: {"trial": Tune config, "study": resolved study}, see
    `trainables.tracking.reproducibility`."""
    return json.loads(artifact(client, run, CONFIG_FILE).read_text())


def run_record(client: MlflowClient, run: Run) -> dict[str, Any] | None:
    """`reproducibility.json`, None for a run logged before it existed."""
    try:
        return json.loads(artifact(client, run, RECORD_FILE).read_text())
    except RunError:
        return None


def study_experiment(client: MlflowClient, study: str | None) -> str:
    """The experiment id of the study so named (experiment or `study` tag), else of the most
    recently started study."""
    if study is not None:
        experiment = client.get_experiment_by_name(study)
        if experiment is not None:
            return experiment.experiment_id
        if "'" not in study and (found := study_run_in(client, all_experiment_ids(client),
                                                       f" and tags.study = '{study}'")):
            return client.get_run(found).info.experiment_id
        raise RunError(f"'{study}' names no study or experiment in the tracking store "
                       f"{client.tracking_uri}")
    found = study_run_in(client, all_experiment_ids(client), "")
    if found is None:
        raise RunError(f"no study in the tracking store {client.tracking_uri} (run "
                       "`python -m orchestrator study FILE` first, or pass --tracking-uri)")
    return client.get_run(found).info.experiment_id


def trial_study(config: dict[str, Any]) -> dict[str, Any]:
    """The resolved study of `config.json` as the schema reads it (a retrain run's logged
    study also names the degradation and stages it used, `retrain.noise_used` and
    `retrain.stages_used`)."""
    study = dict(config["study"])
    study["retrain"] = {k: v for k, v in study.get("retrain", {}).items()
                        if k not in ("noise_used", "stages_used")}
    return study
