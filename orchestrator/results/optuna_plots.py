"""Optuna's pictures of each tuned arm, on the parent run: `plots/optuna_history.png` and
`plots/optuna_importance.png` (`.<arm>` before `.png` when several arms are tuned).

The arm's Optuna study is rebuilt from MLflow alone, as the tables are: each Optuna
sample (the `t<n>` of the `unit` tag) a trial with the tuned values and distributions
of its search run's `config.json` (exact, whatever params a run logs), valued as the
study searcher told Optuna: the mean over the sample's
finished runs (retrain runs for `tune.objective: retrained`, search runs for
`supernet`) of each objective. A plot that cannot be drawn (no completed sample;
importances need two with differing values) is left out with a note.
"""

from __future__ import annotations

import io
import json
import re
import statistics
import tempfile
import warnings
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import optuna
from matplotlib import style
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient
from optuna.trial import TrialState

from orchestrator.results.aggregate import (
    FAILED,
    RunRecord,
    arm_position,
    bucket,
    finished_runs,
    retrained,
)
from orchestrator.study import optuna_space
from studyspec.schema import ObjectiveSpec, TuneSpec
from trainables.plots import DPI
from trainables.tracking import CONFIG_FILE, artifact_run

FIGURE_SIZE = (8.0, 5.0)  # inches
Notes = dict[str, str]  # artifact path -> why it was not drawn


def sample_of(run: RunRecord) -> tuple[str, int] | None:
    """(sample key, Optuna trial number) from a tuned unit `<arm>/t<n>/s<seed>`."""
    match = re.fullmatch(r"(.*/t(\d+))/s\d+", run.tag("unit"))
    return (match.group(1), int(match.group(2))) if match else None


def tuned_arms(children: Iterable[RunRecord]) -> dict[str, list[RunRecord]]:
    """Every run of each tuned arm, arms in study order."""
    runs = [run for run in children if run.tag("tuned") and sample_of(run)]
    ordered = sorted(runs, key=lambda run: (arm_position(run), run.tag("arm"), run.run_id))
    return bucket(ordered, lambda run: run.tag("arm"))


def run_config(client: MlflowClient, runs: Sequence[RunRecord]) -> dict[str, Any] | None:
    """`config.json` ({"trial": Tune config, "study": resolved study}) of the first of `runs`
    (search runs first) that has one."""
    for run in sorted(runs, key=lambda run: (run.tag("phase") != "search", run.run_id)):
        with tempfile.TemporaryDirectory() as folder:
            try:
                path = client.download_artifacts(artifact_run(client, run.run_id, run.tags),
                                                 CONFIG_FILE, folder)
                config = json.loads(Path(path).read_text())
            except (MlflowException, OSError, ValueError):
                continue
        if isinstance(config, dict) and "trial" in config and "study" in config:
            return config
    return None


def sample_trial(spec: TuneSpec, tuned: Mapping[str, Any], runs: Sequence[RunRecord],
                 finished: Mapping[str, RunRecord]) -> optuna.trial.FrozenTrial | None:
    """The Optuna trial of one sample (its `tuned` values): COMPLETE with its mean objectives,
    FAIL when its runs failed, None while it is still running. `finished`: the study's
    finished runs, dedup runs carrying their source's metrics."""
    phase = "retrain" if spec.objective == "retrained" else "search"
    done = [finished[run.run_id] for run in runs
            if run.run_id in finished and run.tag("phase") == phase]
    metrics = [objective.metric for objective in spec.objective_list()]
    scored = [run for run in done if all(metric in run.metrics for metric in metrics)]
    params, distributions = dict(tuned), optuna_space(spec)
    if set(params) != set(distributions):
        return None
    if scored:
        values = [statistics.fmean(run.metrics[m] for run in scored) for m in metrics]
        return optuna.trial.create_trial(params=params, distributions=distributions,
                                         values=values)
    if any(run.status == FAILED for run in runs):
        return optuna.trial.create_trial(params=params, distributions=distributions,
                                         state=TrialState.FAIL)
    return None


def arm_study(client: MlflowClient, runs: Sequence[RunRecord],
              finished: Mapping[str, RunRecord]) -> tuple[optuna.Study, TuneSpec] | None:
    """The arm's Optuna study rebuilt from its runs (None without any `config.json`)."""
    ordered = sorted(runs, key=lambda run: (sample_of(run)[1], run.run_id))
    samples = bucket(ordered, lambda run: sample_of(run)[0])
    configs = [(config, members) for members in samples.values()
               if (config := run_config(client, members)) is not None]
    if not configs:
        return None
    spec = TuneSpec.model_validate(configs[0][0]["study"]["tune"])
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    directions = ["maximize" if o.mode == "max" else "minimize" for o in spec.objective_list()]
    study = optuna.create_study(directions=directions)
    study.add_trials([trial for config, members in configs if (trial := sample_trial(
        spec, config["trial"].get("tuned", {}), members, finished)) is not None])
    return study, spec


def scored_runs(children: Sequence[RunRecord]) -> dict[str, RunRecord]:
    """The finished runs by id, a dedup retrain run with the metrics of the run it links."""
    finished = finished_runs(children)
    return {**finished, **{run.run_id: run for run in retrained(finished)}}


def pyplot_png(draw: Callable[[], Any]) -> bytes:
    """PNG bytes of a figure an `optuna.visualization.matplotlib` function draws through
    pyplot: in matplotlib's default style (Optuna switches to ggplot inside it), at a fixed
    size, without the `Software` text; the figure is closed afterwards."""
    import matplotlib.pyplot as plt

    with style.context("default"), warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        axes = draw()
        figure = axes.figure if hasattr(axes, "figure") else axes.flat[0].figure
        try:
            figure.set_size_inches(*FIGURE_SIZE)
            buffer = io.BytesIO()
            figure.savefig(buffer, format="png", dpi=DPI, metadata={"Software": None},
                           bbox_inches="tight")  # long parameter names stay in the picture
        finally:
            plt.close(figure)
    return buffer.getvalue()


def complete(study: optuna.Study) -> list[optuna.trial.FrozenTrial]:
    return [trial for trial in study.trials if trial.state == TrialState.COMPLETE]


def history_png(study: optuna.Study, objectives: Sequence[ObjectiveSpec]) -> bytes:
    """Optimisation history of the first objective (the one a single-objective study has)."""
    from optuna.visualization.matplotlib import plot_optimization_history

    target = (lambda trial: trial.values[0]) if len(objectives) > 1 else None
    return pyplot_png(lambda: plot_optimization_history(
        study, target=target, target_name=objectives[0].metric))


def importance_png(study: optuna.Study, objectives: Sequence[ObjectiveSpec]) -> bytes:
    """fANOVA importances (seeded: the same trials give the same picture) of every objective."""
    from optuna.importance import FanovaImportanceEvaluator
    from optuna.visualization.matplotlib import plot_param_importances

    name = objectives[0].metric if len(objectives) == 1 else "Objective Value"
    return pyplot_png(lambda: plot_param_importances(
        study, evaluator=FanovaImportanceEvaluator(seed=0), target_name=name))


def varied(trials: Sequence[optuna.trial.FrozenTrial]) -> bool:
    """Some tuned value differs between the trials, and so does the score (fANOVA has
    nothing to attribute otherwise)."""
    return (any(len({json.dumps(t.params[key], sort_keys=True) for t in trials}) > 1
                for key in trials[0].params)
            and len({tuple(t.values) for t in trials}) > 1)


def arm_plots(study: optuna.Study, objectives: Sequence[ObjectiveSpec], suffix: str
              ) -> tuple[dict[str, bytes], Notes]:
    history, importance = f"plots/optuna_history{suffix}.png", \
        f"plots/optuna_importance{suffix}.png"
    done = complete(study)
    if not done:
        reason = "no Optuna sample has completed"
        return {}, {history: reason, importance: reason}
    files, notes = {history: history_png(study, objectives)}, {}
    if len(done) < 2 or not varied(done):
        notes[importance] = "importances need two completed Optuna samples with different values"
    else:
        files[importance] = importance_png(study, objectives)
    return files, notes


def optuna_files(client: MlflowClient, children: Iterable[RunRecord]
                 ) -> tuple[dict[str, bytes], Notes]:
    """Artifact path -> PNG of each tuned arm's Optuna plots, and notes on those left out."""
    children = list(children)
    arms, finished = tuned_arms(children), scored_runs(children)
    files: dict[str, bytes] = {}
    notes: Notes = {}
    for arm, runs in arms.items():
        suffix = "" if len(arms) == 1 else "." + re.sub(r"[^A-Za-z0-9_=+-]", "_", arm)
        rebuilt = arm_study(client, runs, finished)
        if rebuilt is None:
            notes[f"plots/optuna_history{suffix}.png"] = f"no {CONFIG_FILE} of arm '{arm}'"
            continue
        made, skipped = arm_plots(rebuilt[0], rebuilt[1].objective_list(), suffix)
        files.update(made)
        notes.update(skipped)
    return files, notes
