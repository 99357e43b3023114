"""The result cache across studies, on a two-arm study run into one tracking store: run
again unchanged, it starts no trial (no Ray Tune experiment at all), takes a fraction of
the first run's time, writes the same tables, and every child run links the run that did
the work (`cached_from`); with one arm's setting changed, only that arm's units run. A
checkout with uncommitted changes and `--no-cache` look nothing up (the searcher emits every
unit); the checkout's state is set here, whatever the repository's."""

import time
from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient

import trainables.tracking.provenance as provenance
from orchestrator.cli import main
from orchestrator.run.cache import ResultCache, identities
from orchestrator.run.searcher import StudySearcher

STUDY = """
name: cached
data: {train: embedded, test: [embedded], patch_size: 24, max_train_images: 8,
       noise: {type: awgn, sigma: 25}}
search_space: {name: hinas, options: {num_layers: 2, num_nodes: 2, width: 4, stem_channels: 8}}
search: {epochs: 2, steps_per_epoch: 2, batch_size: 2, warmup_epochs: 1, val_crop: 32}
retrain: {epochs: 1, steps_per_epoch: 2, batch_size: 2, space_options: {width: 4},
          cost: {input_size: 64, repeats: 1}}
groups: {g: {title: Two arms}}
tune: {max_concurrent: 2}
arms:
  named:
    - {name: a, group: g}
    - {name: b, group: g, set: {search.loss.ssim_lambda: 0.0}}
"""
COMMIT = {"commit": "0123456789abcdef0123456789abcdef01234567", "dirty": False}


def checkout(monkeypatch, dirty: bool) -> None:
    monkeypatch.setattr(provenance, "_source_commit", lambda: {**COMMIT, "dirty": dirty})


def children(client: MlflowClient, parent: str) -> list:
    experiment = client.get_experiment_by_name("cached").experiment_id
    return client.search_runs([experiment], f"tags.mlflow.parentRunId = '{parent}'")


def latest_parent(client: MlflowClient) -> str:
    experiment = client.get_experiment_by_name("cached").experiment_id
    return client.search_runs([experiment], "tags.phase = 'study'",
                              order_by=["attributes.start_time DESC"])[0].info.run_id


def table(client: MlflowClient, parent: str, folder: Path) -> str:
    return Path(client.download_artifacts(parent, "results/g.md", str(folder))).read_text()


@pytest.mark.slow  # three studies through Ray Tune
@pytest.mark.usefixtures("shared_ray")
def test_an_unchanged_study_runs_nothing_and_a_changed_arm_only_its_units(tmp_path,
                                                                          monkeypatch):
    checkout(monkeypatch, dirty=False)
    study = tmp_path / "cached.yaml"
    study.write_text(STUDY)
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    client = MlflowClient(uri)

    def run_study(storage: str, *extra: str) -> tuple[str, float]:
        started = time.monotonic()
        assert main(["study", str(study), "--tracking-uri", uri, "--storage",
                     str(tmp_path / storage), "--verbose", "0", *extra]) == 0
        return latest_parent(client), time.monotonic() - started

    first, first_s = run_study("first")
    assert not any("cached_from" in r.data.tags for r in children(client, first))
    again, again_s = run_study("again")
    assert not (tmp_path / "again" / "cached" / "study").exists()  # no Tune experiment
    linked = children(client, again)
    originals = {r.info.run_id: r for r in children(client, first)}
    assert len(linked) == len(originals) == 4
    for run in linked:  # a retrain both arms share (one genotype) is one unit's work
        source = originals[run.data.tags["cached_from"]]
        assert run.data.tags["phase"] == source.data.tags["phase"]
        assert run.info.status == "FINISHED"
        assert run.data.metrics == source.data.metrics or "dedup_of" in run.data.tags
    assert table(client, again, tmp_path / "t2") == table(client, first, tmp_path / "t1")
    assert again_s < first_s / 4, (again_s, first_s)

    study.write_text(STUDY.replace("{search.loss.ssim_lambda: 0.0}",
                                   "{search.loss.ssim_lambda: 0.0, search.epochs: 3}"))
    changed, _ = run_study("changed")
    cached = {(r.data.tags["arm"], r.data.tags["phase"]): "cached_from" in r.data.tags
              for r in children(client, changed)}
    # a: all linked; b's search ran again (its retrain too, unless it found the same
    # genotype again: the same retraining, then linked as well)
    assert cached["a", "search"] and cached["a", "retrain"] and not cached["b", "search"]


def test_a_dirty_checkout_or_no_cache_looks_nothing_up(monkeypatch):
    tags = {"git.commit": COMMIT["commit"], "git.dirty": "true", "package_set": "p"}
    assert identities({}, tags, no_cache=False) == (
        {}, False, "result cache: off (the checkout has uncommitted changes: results are "
                   "neither reused nor kept for reuse)")
    _, lookups, line = identities({}, {**tags, "git.dirty": "false"}, no_cache=True)
    assert not lookups and "--no-cache" in line

    class Everything(ResultCache):  # would answer every look-up, if asked
        def lookup(self, config):
            if not self.lookups:
                return None
            raise AssertionError("looked up")

    from orchestrator.cli import checked_study

    study, prepared = checked_study("studies/quickstart.yaml", "smoke")
    searcher = StudySearcher(prepared.plans, None, Everything(None, {}, {}, lookups=False))
    assert searcher.suggest("t0")["phase"] == "search"  # a trial, not a cached result
