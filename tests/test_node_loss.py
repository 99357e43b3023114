"""A whole node lost mid-study, on a two-node loopback cluster (`ray.cluster_utils.Cluster`,
two CPUs each) with the tracking server down at that moment (a loopback proxy in front of
a real `mlflow server` refuses connections).

The head's CPUs are held by a placeholder actor at first, so that a search (arm b) and a
retrain (arm a, whose one-epoch search came first) both run on the worker node. Both hang
at epoch 2 with that epoch's metrics queued in the tracking spool (the server is down) and
the checkpoint of epoch 1 in the storage; then the worker node is removed (its raylet and
workers killed), the head's CPUs are freed and the server answers again. Checked: both
trials continue on the head from their checkpoints in the same MLflow runs; every run is
FINISHED; every unit's metric steps are contiguous, none twice; the tables are complete;
the spool (in the study's storage, which the lost node shared) is empty and nothing is
reported undelivered.
"""

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import ray
from mlflow.tracking import MlflowClient
from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

from tests.test_cluster import mlflow_server, two_nodes, wait_gone
from tests.tracking_proxy import TrackingProxy

pytestmark = pytest.mark.slow  # a two-node Ray cluster, an MLflow server, a study

STUDY = """
name: lost
data: {train: embedded, test: [embedded], patch_size: 24, max_train_images: 8,
       noise: {type: awgn, sigma: 25}}
search_space: {name: hinas, options: {num_layers: 2, num_nodes: 2, width: 4, stem_channels: 8}}
search: {epochs: 3, steps_per_epoch: 8, batch_size: 2, warmup_epochs: 1, val_crop: 32}
retrain: {epochs: 3, steps_per_epoch: 8, batch_size: 2, space_options: {width: 4},
          optimizer: {lr: 0.005},
          cost: {input_size: 64, repeats: 1}}
groups: {g: {title: Two arms}}
tune: {max_concurrent: 2, max_failures: 2}
arms:
  named:
    - {name: a, group: g, set: {search.epochs: 1, search.warmup_epochs: 0}}
    - {name: b, group: g}
"""
EPOCHS = {"search": {"a": 1, "b": 3}, "retrain": {"a": 3, "b": 3}}


@ray.remote(num_cpus=2)
class Hold:
    """Holds the head's CPUs until killed."""

    def ready(self) -> bool:
        return True


def reported(faults, epoch: int) -> set[str]:
    return {run for _, run, at in faults.attempts() if at == epoch}


def wait_for(condition, process, what: str, timeout: float = 300) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert process.poll() is None, f"the study ended before {what}"
        assert time.monotonic() < deadline, f"no {what} in {timeout} s"
        time.sleep(0.2)


def test_a_lost_node_with_a_search_and_a_retrain_on_it(tmp_path, monkeypatch, faults, own_ray):
    for name in ("head", "worker", "server", "driver"):
        (tmp_path / name).mkdir()
    study = tmp_path / "driver" / "lost.yaml"
    study.write_text(STUDY)
    storage = tmp_path / "runs"
    for key, value in faults.env("hang", 2, times=2, gate=1).items():  # the raylets' workers see it
        monkeypatch.setenv(key, value)
    started: set[int] = set()
    with (mlflow_server(f"sqlite:///{tmp_path / 'server' / 'mlflow.db'}", tmp_path / "server",
                        started) as url,
          two_nodes(monkeypatch, tmp_path / "head", tmp_path / "worker", started, cpus=2) as (
              cluster, worker, _)):
        proxy = TrackingProxy(int(url.rsplit(":", 1)[1]))
        ray.init(address=cluster.address)
        hold = Hold.options(scheduling_strategy=NodeAffinitySchedulingStrategy(
            cluster.head_node.node_id, soft=False)).remote()
        ray.get(hold.ready.remote())
        log = tmp_path / "study.log"
        with open(log, "w") as output:
            process = subprocess.Popen(
                [sys.executable, "-m", "orchestrator", "study", str(study), "--address",
                 cluster.address, "--tracking-uri", proxy.uri, "--storage", str(storage),
                 "--verbose", "1"], cwd=tmp_path / "driver", stdout=output,
                stderr=subprocess.STDOUT, start_new_session=True, env=os.environ.copy())
        try:
            # arm a's retrain and arm b's search have checkpointed epoch 1: the server goes down
            wait_for(lambda: len(reported(faults, 1)) >= 2, process, "two trials at epoch 1")
            proxy.set("refuse")
            faults.open_gate()  # epoch 2 starts only now: its metrics cannot reach the server
            faults.wait("hang", 2, process)  # both hang at epoch 2, its metrics spooled
            spool = storage / "lost" / "tracking-spool"
            hanging = reported(faults, 2)
            queued = {path.name.split(".")[0] for path in spool.rglob("*.pending.jsonl")}
            assert hanging <= queued, (hanging, queued)  # the lost node's queue, on storage
            cluster.remove_node(worker)
            ray.kill(hold)
            proxy.set("forward")
            process.wait(600)
        finally:
            if process.poll() is None:
                os.killpg(process.pid, 9)
                process.wait()
            ray.shutdown()
        assert process.returncode == 0, log.read_text()[-3000:]
        client = MlflowClient(url)
        runs = client.search_runs([client.get_experiment_by_name("lost").experiment_id])
        phases = sorted(run.data.tags["phase"] for run in runs)
        assert phases == ["retrain", "retrain", "search", "search", "study"]
        assert {run.info.status for run in runs} == {"FINISHED"}
        for run in runs:
            tags = run.data.tags
            if tags["phase"] == "study":
                assert tags["tracking.undelivered_metrics"] == "0"
                table = Path(client.download_artifacts(run.info.run_id, "results/g.md",
                                                       str(tmp_path))).read_text()
                assert "| a |" in table and "| b |" in table
                continue
            steps = [m.step for m in client.get_metric_history(run.info.run_id, "train/loss")]
            assert sorted(steps) == list(range(EPOCHS[tags["phase"]][tags["arm"]])), (
                tags["phase"], tags["arm"], steps)
            if run.info.run_id in hanging:  # continued on the head
                assert tags["ray.node_id"] == cluster.head_node.node_id
        assert not list(spool.rglob("*.jsonl"))
    assert wait_gone(started) == set(), "processes left running"
