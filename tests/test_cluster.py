"""Cluster mode end to end, on loopback: two Ray nodes (`ray.cluster_utils.Cluster`, one CPU
each, so the study's two concurrent trials land one per node) and an `mlflow server` on
127.0.0.1 whose backend store is PostgreSQL when its binaries are installed (CI installs
Debian's `postgresql`), SQLite otherwise (a warning says so). A two-seed smoke study runs
through the CLI with `--address` and `--tracking-uri http://...`.

Checked: trials ran on both nodes (their runs' `ray.node_id` tags); every run, every metric
a trial reported to Tune (its `result.json` lines) and the artifacts are in the server; the
data reached the trials through the object store only: the dataset folder the driver read
is moved away before the first trial starts, and no image lands in the nodes' working
folders or Tune's trial working directories; every process started here is stopped by pid.
"""

import json
import os
import pwd
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
import warnings
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pytest
from mlflow.tracking import MlflowClient
from PIL import Image
from ray._private import ray_constants
from ray.cluster_utils import Cluster

from trainables.data.embedded import embedded_images
from trainables.data.images import IMAGE_SUFFIXES

pytestmark = pytest.mark.slow  # starts a two-node Ray cluster and an MLflow server

LOOPBACK = "127.0.0.1"
STUDY = """
name: clustered
data: {train: train400, test: [set12], patch_size: 24, noise: {type: awgn, sigma: 25}}
seeds: [0, 1]
search_space: {name: hinas, options: {num_layers: 2, num_nodes: 2, width: 4, stem_channels: 8}}
search: {epochs: 2, steps_per_epoch: 2, batch_size: 2, warmup_epochs: 1, val_crop: 32}
retrain: {epochs: 1, steps_per_epoch: 2, batch_size: 2, space_options: {width: 4},
          cost: {input_size: 64, repeats: 1}}
tune: {max_concurrent: 2}
"""


def free_port() -> int:
    import socket

    with socket.socket() as probe:
        probe.bind((LOOPBACK, 0))
        return probe.getsockname()[1]


def alive(pid: int) -> bool:
    """Running (a zombie counts as gone: it only waits for its parent to reap it)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except (FileNotFoundError, ProcessLookupError):
        return False


def descendants(pids: list[int]) -> set[int]:
    """`pids` and every process below them (from /proc)."""
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except (FileNotFoundError, ProcessLookupError):
            continue
        children.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    found, todo = set(), list(pids)
    while todo:
        pid = todo.pop()
        if pid not in found:
            found.add(pid)
            todo.extend(children.get(pid, []))
    return found


def wait_gone(pids: set[int], seconds: float = 30) -> set[int]:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline and any(alive(pid) for pid in pids):
        time.sleep(0.2)
    return {pid for pid in pids if alive(pid)}


def postgres_bin() -> Path | None:
    """The folder of initdb and pg_ctl (Debian keeps them off PATH), None if not installed."""
    folders = sorted(Path("/usr/lib/postgresql").glob("*/bin"), reverse=True)
    found = shutil.which("initdb")
    folders += [Path(found).resolve().parent] if found else []
    return next((f for f in folders if (f / "initdb").exists() and (f / "pg_ctl").exists()),
                None)


@contextmanager
def backend_store(folder: Path, started: set[int]):
    """A PostgreSQL server on 127.0.0.1 (its own data folder, stopped by pid), else SQLite."""
    binaries = postgres_bin()
    if binaries is None:
        warnings.warn("PostgreSQL is not installed: the MLflow server uses SQLite", stacklevel=1)
        yield f"sqlite:///{folder / 'mlflow.db'}"
        return
    home = Path(tempfile.mkdtemp(prefix="pg-"))  # in /tmp: postgres runs as nobody under root
    as_user = ["runuser", "-u", "nobody", "--"] if os.geteuid() == 0 else []
    try:
        if as_user:
            nobody = pwd.getpwnam("nobody")
            os.chown(home, nobody.pw_uid, nobody.pw_gid)
        data, port = home / "data", free_port()
        subprocess.run([*as_user, binaries / "initdb", "-D", data, "-U", "postgres",
                        "--auth=trust", "--no-sync"], check=True, capture_output=True, cwd=home)
        subprocess.run([*as_user, binaries / "pg_ctl", "-D", data, "-l", home / "log", "-w",
                        "-o", f"-h {LOOPBACK} -p {port} -k {home} -c fsync=off", "start"],
                       check=True, capture_output=True, cwd=home)
        postmaster = int((data / "postmaster.pid").read_text().split()[0])
        started |= descendants([postmaster])
        try:
            yield f"postgresql://postgres@{LOOPBACK}:{port}/postgres"
        finally:
            started |= descendants([postmaster])
            os.kill(postmaster, signal.SIGINT)  # fast shutdown
            wait_gone({postmaster})
    finally:
        shutil.rmtree(home, ignore_errors=True)


@contextmanager
def mlflow_server(backend: str, folder: Path, started: set[int]):
    """`mlflow server` on 127.0.0.1 in its own process group, stopped by that group's id."""
    url = f"http://{LOOPBACK}:{free_port()}"
    command = [sys.executable, "-m", "mlflow", "server", "--host", LOOPBACK, "--port",
               url.rsplit(":", 1)[1], "--workers", "1", "--backend-store-uri", backend,
               "--artifacts-destination", str(folder / "artifacts")]
    env = {**os.environ, "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"}  # no job workers
    with open(folder / "mlflow-server.log", "w") as log:
        server = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=env,
                                  start_new_session=True)
    try:
        deadline = time.monotonic() + 120
        while not healthy(url):
            assert server.poll() is None, (folder / "mlflow-server.log").read_text()[-2000:]
            assert time.monotonic() < deadline, "the MLflow server did not come up"
            time.sleep(0.5)
        yield url
    finally:
        started |= descendants([server.pid])
        os.killpg(server.pid, signal.SIGTERM)
        try:
            server.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
            server.wait()


def healthy(url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/health", timeout=2) as response:
            return response.status == 200
    except OSError:
        return False


@contextmanager
def two_nodes(monkeypatch, head_home: Path, worker_home: Path, started: set[int],
              cpus: int = 1):
    """Head and worker raylets on 127.0.0.1, `cpus` CPUs each, each started in its own folder
    (the working directory its Ray workers inherit)."""
    monkeypatch.setenv("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")  # keep 127.0.0.1
    monkeypatch.setattr(ray_constants, "ENABLE_RAY_CLUSTER", False)
    temp = tempfile.mkdtemp(prefix="ray-")  # short: Ray's socket paths must fit 107 bytes
    node = {"node_ip_address": LOOPBACK, "num_cpus": cpus, "temp_dir": temp}
    monkeypatch.chdir(head_home)
    cluster = Cluster(initialize_head=True, head_node_args={
        **node, "gcs_server_port": free_port(), "include_dashboard": False})
    try:
        monkeypatch.chdir(worker_home)
        worker = cluster.add_node(**node)
        yield cluster, worker, Path(temp)
    finally:
        nodes = [cluster.head_node, *cluster.worker_nodes]
        started |= descendants([p.process.pid for n in nodes
                                for ps in n.all_processes.values() for p in ps])
        cluster.shutdown()
        shutil.rmtree(temp, ignore_errors=True)


def write_datasets(root: Path) -> None:
    """Stand-ins for Train400 and Set12 under a data root (named datasets keep the metric
    keys plain): 48x48 grey crops of the embedded photographs, as PNG files."""
    for name, role, count in (("train400", "train", 6), ("set12", "test", 2)):
        (root / name).mkdir(parents=True)
        for image in embedded_images(role, False)[:count]:
            pixels = np.round(image.pixels[:48, :48, 0] * 255).astype(np.uint8)
            Image.fromarray(pixels).save(root / name / f"{image.name}.png")


def run_moving_data_away(command: list[str], cwd: Path, data: Path, client: MlflowClient,
                         log: Path) -> bool:
    """Run the study; as soon as its parent run exists (the driver has loaded the data),
    move the dataset folder away. True when no trial had started by then."""
    with open(log, "w") as output:
        process = subprocess.Popen(command, cwd=cwd, stdout=output, stderr=subprocess.STDOUT,
                                   start_new_session=True)
    try:
        moved_first, deadline = None, time.monotonic() + 420
        while process.poll() is None:
            assert time.monotonic() < deadline, "the study did not finish in 7 minutes"
            if moved_first is None:
                runs = study_runs(client)
                if any(run.data.tags.get("phase") == "study" for run in runs):
                    data.rename(data.with_name("moved-away"))
                    moved_first = len(runs) == 1
            time.sleep(0.2)
        assert process.returncode == 0, log.read_text()[-3000:]
        return bool(moved_first)
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


def study_runs(client: MlflowClient) -> list:
    experiment = client.get_experiment_by_name("clustered")
    return client.search_runs([experiment.experiment_id]) if experiment else []


def tune_results(storage: Path) -> list[dict]:
    """Every result a trial reported to Tune (its result.json lines)."""
    files = storage.glob("clustered/study/*/result.json")
    return [json.loads(line) for file in files for line in file.read_text().splitlines()]


def images_under(*folders: Path) -> list[Path]:
    return [path for folder in folders for path in folder.rglob("*")
            if path.suffix.lower() in IMAGE_SUFFIXES]


def test_two_nodes_log_to_a_tracking_server(tmp_path, monkeypatch, own_ray):
    homes = {name: tmp_path / name for name in ("driver", "head", "worker", "server")}
    for home in homes.values():
        home.mkdir()
    data = homes["driver"] / "data"
    write_datasets(data)
    study = homes["driver"] / "clustered.yaml"
    study.write_text(STUDY)
    started: set[int] = set()
    with (backend_store(homes["server"], started) as backend,
          mlflow_server(backend, homes["server"], started) as url,
          two_nodes(monkeypatch, homes["head"], homes["worker"], started) as (
              cluster, worker, ray_temp)):
        client = MlflowClient(url)
        command = [sys.executable, "-m", "orchestrator", "study", str(study), "--address",
                   cluster.address, "--tracking-uri", url, "--storage", str(tmp_path / "runs"),
                   "--data-root", str(data), "--verbose", "0"]
        assert run_moving_data_away(command, homes["driver"], data, client,
                                    tmp_path / "study.log"), "trials started before the move"
        runs = study_runs(client)
        check_runs(client, runs, {cluster.head_node.node_id, worker.node_id})
        check_every_result_logged(client, tune_results(tmp_path / "runs"))
        working = list(ray_temp.glob("session_*/artifacts/*/study/working_dirs/*"))
        assert len(working) >= 4  # one per trial (2 searches, 2 retrains)
        assert images_under(homes["head"], homes["worker"], *working) == []
    assert wait_gone(started) == set(), "processes left running"
    assert "postgresql" in backend or postgres_bin() is None


def check_runs(client: MlflowClient, runs: list, node_ids: set[str]) -> None:
    phases = sorted(run.data.tags["phase"] for run in runs)
    assert phases == ["retrain", "retrain", "search", "search", "study"]
    assert {run.info.status for run in runs} == {"FINISHED"}
    trials = [run for run in runs if run.data.tags["phase"] != "study"]
    assert {run.data.tags["ray.node_id"] for run in trials} == node_ids
    assert {run.data.tags["ray.node_ip"] for run in trials} == {LOOPBACK}
    for run in trials:
        artifacts = {a.path for a in client.list_artifacts(run.info.run_id)}
        if run.data.tags["phase"] == "search":
            assert "genotype.json" in artifacts
        else:
            assert "weights" in artifacts and "cost/params" in run.data.metrics
            assert any(key.startswith("test/") for key in run.data.metrics)


def check_every_result_logged(client: MlflowClient, results: list[dict]) -> None:
    assert len({r["mlflow_run_id"] for r in results}) == 4
    for result in results:
        ours = {key: value for key, value in result.items()  # not Tune's own (time_total_s)
                if "/" in key and isinstance(value, (int, float))}
        assert "train/loss" in ours
        for key, value in ours.items():
            history = client.get_metric_history(result["mlflow_run_id"], key)
            logged = {m.step: m.value for m in history}
            assert logged.get(result["epoch"]) == pytest.approx(value), key
