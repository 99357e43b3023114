"""Fault injection into real Ray workers, for the interruption tests.

`faults.env(action, epoch)` returns environment variables that make every Python
process started with them (the driver's Ray workers) import a `sitecustomize` from
a temporary folder. It wraps the `tune.report` that `trainables.tune.session` calls: when a trial
reports `epoch`, its metrics are already in MLflow but its checkpoint is not yet in Tune.
There the worker either hangs (`hang`: the test kills the driver), SIGKILLs itself
(`kill`: Tune restarts the trial) or finds the storage full (`nospace`: the checkpoint's
copy raises ENOSPC); `log` only lists the reports. Each trial does it once. With `gate`, every
trial waits after its report of that epoch until the test calls `faults.open_gate()`;
`faults.attempts()` lists the (pid, run id, epoch) of every report the workers made.
"""

from __future__ import annotations

import dataclasses
import os
import shutil
import time
from pathlib import Path

import pytest

# step estimates are not kept between tests (`trainables.loops.estimate_store`): each test
# measures what it asserts; the store's own test names a folder
os.environ["NAS_ESTIMATE_STORE"] = "off"

HOOK = '''
import importlib.abc, importlib.util, os, signal, sys, time

FOLDER, ACTION, EPOCH = (os.environ["FAULT_DIR"], os.environ["FAULT_ACTION"],
                         int(os.environ["FAULT_EPOCH"]))
TIMES = int(os.environ.get("FAULT_TIMES", "1000000"))  # at most this many trials in all
GATE = int(os.environ.get("FAULT_GATE", "-1"))  # after this epoch's report: wait for the gate


def _once(run_id):
    if len([f for f in os.listdir(FOLDER) if f.startswith(ACTION + "-")]) >= TIMES:
        return False
    try:
        os.close(os.open(os.path.join(FOLDER, f"{ACTION}-{run_id}"),
                         os.O_CREAT | os.O_EXCL | os.O_WRONLY))
        return True
    except FileExistsError:
        return False


class _Tune:
    def __init__(self, tune):
        self._tune = tune

    def __getattr__(self, name):
        return getattr(self._tune, name)

    def report(self, result, **kwargs):
        run_id, epoch = result["mlflow_run_id"], result["epoch"]
        with open(os.path.join(FOLDER, "reports.txt"), "a") as log:
            log.write(f"{os.getpid()} {run_id} {epoch}\\n")
        if epoch == EPOCH and _once(run_id):
            if ACTION == "kill":
                os.kill(os.getpid(), signal.SIGKILL)
            if ACTION == "nospace":  # as pyarrow says it when the storage is full
                raise OSError(28, "Error writing bytes to file. Detail: [errno 28] No space "
                                  "left on device")
            time.sleep(3600)
        answer = self._tune.report(result, **kwargs)
        while epoch == GATE and not os.path.exists(os.path.join(FOLDER, "gate-open")):
            time.sleep(0.1)
        return answer


class _Finder(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path, target=None):
        if name != "trainables.tune.session":
            return None
        sys.meta_path.remove(self)
        spec = importlib.util.find_spec(name)
        run = spec.loader.exec_module

        def exec_module(module):
            run(module)
            module.tune = _Tune(module.tune)

        spec.loader.exec_module = exec_module
        return spec


sys.meta_path.insert(0, _Finder())
'''


class Faults:
    def __init__(self, folder: Path):
        self.folder = folder
        folder.mkdir()
        (folder / "sitecustomize.py").write_text(HOOK)

    def env(self, action: str, epoch: int, times: int | None = None,
            gate: int | None = None) -> dict[str, str]:
        """`times`: only the first so many trials to reach `epoch` (default: every one)."""
        path = os.pathsep.join(p for p in (str(self.folder), os.environ.get("PYTHONPATH")) if p)
        return {"PYTHONPATH": path, "FAULT_DIR": str(self.folder), "FAULT_ACTION": action,
                "FAULT_EPOCH": str(epoch), **({"FAULT_TIMES": str(times)} if times else {}),
                **({"FAULT_GATE": str(gate)} if gate is not None else {})}

    def open_gate(self) -> None:
        (self.folder / "gate-open").touch()

    def attempts(self) -> list[tuple[int, str, int]]:
        """(pid, run id, epoch) of every report the workers made, in order."""
        log = self.folder / "reports.txt"
        lines = log.read_text().split() if log.exists() else []
        return [(int(pid), run, int(epoch)) for pid, run, epoch in zip(*[iter(lines)] * 3)]

    def wait(self, action: str, count: int, process=None, timeout: float = 240) -> None:
        """Until `count` trials have hit the fault (fail if the study ends or stalls first)."""
        deadline = time.monotonic() + timeout
        while (hit := len(list(self.folder.glob(f"{action}-*")))) < count:
            if time.monotonic() > deadline or (process is not None and process.poll() is not None):
                pytest.fail(f"only {hit} of {count} trials reached the fault")
            time.sleep(0.2)


@pytest.fixture
def faults(tmp_path) -> Faults:
    return Faults(tmp_path / "faults")


@pytest.fixture
def small_costs(monkeypatch):
    """The retrain loop's cost metrics measured on a 64 x 64 input with one timed pass,
    whatever `retrain.cost` says: the same code path (tests/trainables/test_cost.py checks the
    metrics themselves), about 20 times cheaper than the default 256 x 256 and 2 + 5 passes.
    A study in a test can say the same with `retrain.cost: {input_size: 64, repeats: 1}`."""
    import trainables.loops.retrain as retrain_loop
    from trainables.loops.cost import cost_metrics

    def small(model, channels, device, **_):
        return cost_metrics(model, channels, device, size=64, repeats=1)

    monkeypatch.setattr(retrain_loop, "cost_metrics", small)


@pytest.fixture(scope="session")
def ray_session():
    """One local Ray cluster for the in-process studies of this session (started by the
    first `shared_ray` module or `quickstart_store`): the runner reuses a running cluster and
    leaves it running (it stops only what it started). A test whose workers need their own
    environment (`faults`) or their own resources asks for `own_ray` instead."""
    yield
    import ray

    if ray.is_initialized():
        ray.shutdown()


@pytest.fixture(scope="module")
def shared_ray(ray_session):
    """The session's cluster for this module's studies (started again if a test with
    `own_ray` stopped it)."""
    from orchestrator.run.runner import start_ray

    start_ray(None)  # a no-op while it runs


@pytest.fixture
def own_ray():
    """No cluster running: the study under test starts (and stops) its own, whose workers
    inherit the environment the test set."""
    import ray

    if ray.is_initialized():
        ray.shutdown()


@dataclasses.dataclass(frozen=True)
class Store:
    """A finished study in a temporary MLflow store: read it, do not add to it."""

    folder: Path
    uri: str
    study_file: Path
    runs: list  # the experiment's runs when the study ended
    console: str  # what the study printed (--verbose 1)
    wall_s: float  # the command's wall time (Ray already running)
    estimate_s: float  # `--dry-run`'s estimate of that wall time, made just before it
    load_after: float  # the 1-minute load average when it ended

    @property
    def client(self):
        from mlflow.tracking import MlflowClient

        return MlflowClient(self.uri)

    def copy(self, folder: Path) -> str:
        """A copy of the tracking database in `folder` (its artifacts stay where they are),
        for a test that adds runs: its tracking URI."""
        shutil.copy(self.folder / "mlflow.db", folder / "mlflow.db")
        return f"sqlite:///{folder / 'mlflow.db'}"


@pytest.fixture(scope="session")
def quickstart_store(tmp_path_factory, ray_session) -> Store:
    """`python -m orchestrator study studies/quickstart.yaml --profile smoke` (the README's
    main job, shortened), run once for every test that reads its runs."""
    import contextlib
    import io

    from mlflow.tracking import MlflowClient

    from orchestrator.cli import main
    from orchestrator.run.runner import start_ray

    start_ray(None)
    folder = tmp_path_factory.mktemp("quickstart")
    uri = f"sqlite:///{folder / 'mlflow.db'}"
    study = Path(__file__).resolve().parents[1] / "studies" / "quickstart.yaml"
    estimate = dry_run_estimate(study)
    console, started = io.StringIO(), time.monotonic()
    with contextlib.redirect_stdout(console):  # Tune's loop and callbacks run in this thread
        code = main(["study", str(study), "--profile", "smoke", "--tracking-uri", uri,
                     "--storage", str(folder / "runs"), "--verbose", "1"])
    assert code == 0, console.getvalue()
    client = MlflowClient(uri)
    runs = client.search_runs([client.get_experiment_by_name("quickstart").experiment_id])
    return Store(folder, uri, study, runs, console.getvalue(), time.monotonic() - started,
                 estimate, os.getloadavg()[0])


def dry_run_estimate(study: Path) -> float:
    """The wall time `study --dry-run --profile smoke` estimates: the trials' seconds over the
    trials at once, plus the study's own."""
    from orchestrator.cli import checked_study
    from orchestrator.run.estimate import study_costs, trial_seconds

    resolved, prepared = checked_study(str(study), "smoke")
    costs, slots, study_s = study_costs(resolved, prepared, str(study), "sqlite:///:memory:")
    return trial_seconds(costs) / slots + study_s
