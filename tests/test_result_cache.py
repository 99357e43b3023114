"""The result cache across studies and two-stage retraining, on a two-arm study run into one
tracking store. Arm a tunes the retraining's learning rate over three Optuna samples with
`retrain.proxy` (every candidate retrained for 1 step, the 2 best by validation score in
full: 2 epochs of 4 steps), so the parent run has the Kendall tau of the kept candidates'
short and full scores and the compute saved, 1 - (3 x 1 + 2 x 8) / (3 x 8) = 5/24 of the
retraining steps; the tables count the full retrainings only. Run again unchanged, the
study starts no trial (no Ray Tune experiment at all), takes a fraction of the first run's
time, writes the same tables, and every child run links the run that did the work
(`cached_from`); with arm b's setting changed, only b's units run. A
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
retrain: {epochs: 2, steps_per_epoch: 4, batch_size: 2, space_options: {width: 4},
          optimizer: {name: adam, lr: 0.001}, cost: {input_size: 64, repeats: 1}}
groups: {g: {title: Two arms}}
tune: {max_concurrent: 2}
arms:
  named:
    - name: a
      group: g
      set:
        retrain.proxy: {steps: 1, keep: 2}
        tune.num_samples: 3
        tune.space: {retrain.optimizer.lr: {type: float, low: 0.0001, high: 0.01, log: true}}
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
    runs = children(client, first)
    assert not any("cached_from" in r.data.tags for r in runs)
    check_proxy(client, first, runs, tmp_path)
    again, again_s = run_study("again")
    assert not (tmp_path / "again" / "cached" / "study").exists()  # no Tune experiment
    linked = children(client, again)
    originals = {r.info.run_id: r for r in children(client, first)}
    assert len(linked) == len(originals) == 10  # a: 3 searches, 3 short, 2 full; b: 2
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


def check_proxy(client: MlflowClient, parent: str, runs: list, folder: Path) -> None:
    retrains = [r for r in runs if r.data.tags["arm"] == "a" and
                r.data.tags["phase"] == "retrain"]
    short = [r for r in retrains if r.data.tags["proxy"] == "short"]
    full = [r for r in retrains if r.data.tags["proxy"] == "full"]
    assert (len(short), len(full)) == (3, 2)
    assert {r.data.tags["unit"] for r in full} < {r.data.tags["unit"] for r in short}
    assert all(sorted(m.step for m in client.get_metric_history(r.info.run_id, "train/loss"))
               == [0] for r in short)  # one epoch (of the proxy's one step)
    by_unit = {r.data.tags["unit"]: r.data.metrics["val/psnr"] for r in short}
    dropped = (set(by_unit) - {r.data.tags["unit"] for r in full}).pop()
    assert by_unit[dropped] == min(by_unit.values())  # the worst short score is not kept
    metrics = client.get_run(parent).data.metrics
    assert metrics["proxy/compute_saved"] == pytest.approx(5 / 24)
    assert -1.0 <= metrics["proxy/kendall_tau"] <= 1.0
    rows = [line for line in table(client, parent, folder / "t0").splitlines()
            if line.startswith("| a ")]
    assert len(rows) == 2 and all("(1) |" in row for row in rows)  # the 2 full ones only


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


@pytest.mark.parametrize("flags, expected", [((), False), (("--no-cache",), True)])
def test_the_cli_hands_no_cache_to_the_study(monkeypatch, flags, expected):
    import orchestrator.run
    from orchestrator.study import StudyError

    seen = []

    def run_study(study, options):
        seen.append(options.no_cache)
        raise StudyError("stop here")

    monkeypatch.setattr(orchestrator.run, "run_study", run_study)
    assert main(["study", "studies/quickstart.yaml", "--profile", "smoke", *flags]) == 2
    assert seen == [expected]
