"""compare / export / rerun / ui on hand-made runs in a temporary SQLite store (no Ray)."""

import argparse
import copy
import io
import json
import re
import runpy

import pytest
import torch

from orchestrator.cli import main
from orchestrator.commands.compare import compare_command, entries
from orchestrator.commands.export import export_run
from orchestrator.commands.rerun import planned_study
from orchestrator.commands.runs import RunError, study_experiment
from orchestrator.commands.ui import runs_table_url, server_command
from searchspaces.genotype import Genotype
from searchspaces.registry import build_derived_from_genotype
from studyspec.schema import Study
from trainables.loops.retrain import derived_options
from trainables.tracking.reproducibility import data_manifest, record_texts
from trainables.tracking.runs import Tracker

OFFICIAL = "studies/genotypes/hinas-official-3c4n.json"
OPTIONS = {"num_layers": 3, "num_nodes": 4, "width": 4, "stem_channels": 8}
NOISE = {"type": "awgn", "sigma": 25.0}


def changed_genotype(genotype: Genotype) -> Genotype:
    """The official genotype with the second edge of cell 0, node 1 made a 3x3 convolution."""
    data = copy.deepcopy(genotype.to_dict())
    data["arch"]["cells"][0][1][1] = ["conv_3x3", 2]
    return Genotype.from_dict(data)


def log_trial(tracker, experiment, parent, name, genotype, study, lr, psnr, model=None):
    config = {"phase": "retrain", "arm": "hand", "seed": 3, "unit": "hand/s3", "tuned": {},
              "noise": NOISE, "candidate": {"genotype": genotype.to_json(), "source": ""}}
    run = tracker.start_run(experiment, name, {"phase": "retrain", "arm": "hand", "seed": 3,
                                               "arch_hash": genotype.arch_hash()}, parent)
    tracker.log_params(run, {"retrain": {"optimizer": {"lr": lr}}, "seed": 3})
    tracker.log_metrics(run, {"test/embedded/sigma25/psnr": psnr, "cost/params": 100}, 0)
    logged = {**study, "retrain": {**study["retrain"], "noise_used": NOISE}}
    for file, text in record_texts(config, logged, "retrain", "abc", 0).items():
        tracker.log_text(run, text, file)
    tracker.log_text(run, genotype.to_json() + "\n", "genotype.json")
    if model is not None:
        buffer = io.BytesIO()
        torch.save(model.state_dict(), buffer)
        tracker.log_bytes(run, buffer.getvalue(), "weights/model.pt")
    return run


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    """A study run 'hand' with two retrain runs whose genotypes differ in one operation;
    the first has weights."""
    tmp_path = tmp_path_factory.mktemp("tools")
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    tracker = Tracker(uri)
    experiment = tracker.experiment_id("hand")
    parent = tracker.start_run(experiment, "hand", {"phase": "study", "study": "hand"})
    study = Study.model_validate({"name": "hand", "seed": 3, "search_space": {
        "name": "hinas", "options": OPTIONS}}).model_dump(mode="json")
    first, second = Genotype.load(OFFICIAL), changed_genotype(Genotype.load(OFFICIAL))
    torch.manual_seed(0)
    model = build_derived_from_genotype(first, derived_options(Study.model_validate(study)), 1)
    a = log_trial(tracker, experiment, parent, "hand/s3/retrain", first, study, 0.001, 27.5,
                  model)
    b = log_trial(tracker, experiment, parent, "hand/s3/retrain-b", second, study, 0.002, 27.0)
    return argparse.Namespace(uri=uri, a=a, b=b, parent=parent, model=model,
                              experiment=experiment, tmp=tmp_path)


def test_architecture_entries_are_edges():
    arch = {"cells": [[[["conv_3x3", 0], ["skip", 1]]]], "levels": [0, 1], "residual": True}
    assert list(entries(arch)) == [("cells[0][0][0]", '["conv_3x3", 0]'),
                                   ("cells[0][0][1]", '["skip", 1]'), ("levels", "[0, 1]"),
                                   ("residual", "true")]


def test_compare_marks_the_changed_operation(store):
    lines = compare_command(store.uri, store.a, store.b, store.tmp / "out")
    marked = [line for line in lines if line.startswith("*")]
    assert any("cells[0][1][1]" in line and "skip" in line and "conv_3x3" in line
               for line in marked)
    assert not any(line.startswith("*") and "cells[1]" in line for line in lines)
    text = "\n".join(lines)
    assert re.search(r"retrain\.optimizer\.lr\s+\| 0\.001\s+\| 0\.002", text)
    assert re.search(r"test/embedded/sigma25/psnr\s+\| 27\.5\s+\| 27\s+\| -0\.5", text)
    assert "cost/params" not in text  # equal values are not listed
    assert (store.tmp / "out" / "compare.png").read_bytes()[:4] == b"\x89PNG"


def test_export_loads_without_mlflow_and_matches_the_logged_weights(store, monkeypatch):
    out = store.tmp / "export"
    names = {path.name for path in export_run(store.uri, store.a, out)}
    assert {"genotype.json", "model.pt", "network.json", "config.json", "README.md",
            "reproducibility.json"} <= names
    snippet = re.search(r"```python\n(.*?)```", (out / "README.md").read_text(), re.S).group(1)
    (out / "load.py").write_text(snippet)
    monkeypatch.chdir(out)
    loaded = runpy.run_path(str(out / "load.py"))["model"]  # the README's own code
    noisy = torch.rand(2, 1, 24, 24)
    store.model.eval()
    with torch.no_grad():
        assert torch.equal(loaded(noisy), store.model(noisy))


def test_export_of_a_run_without_weights_is_one_line(store, capsys):
    assert main(["export", store.b, "--out", str(store.tmp / "x"), "--tracking-uri",
                 store.uri]) == 2
    error = capsys.readouterr().err
    assert error.count("\n") == 1 and "has no artifact weights/model.pt" in error


@pytest.mark.parametrize("command", [["compare", "nope", "nope2"], ["export", "nope", "--out",
                                     "x"], ["rerun", "nope"], ["ui", "--study", "nope"]])
def test_unknown_run_or_study_is_one_line(store, capsys, command):
    assert main([*command, "--tracking-uri", store.uri]) == 2
    error = capsys.readouterr().err
    assert error.count("\n") == 1 and "'nope' names no" in error


def test_rerun_of_a_retrain_is_that_genotype_at_that_seed_and_noise(store):
    from mlflow.tracking import MlflowClient

    study = Study.model_validate(planned_study(MlflowClient(store.uri), store.a)[0])
    (arm,) = study.arms.named
    assert arm.genotype == f"runs:/{store.a}/genotype.json" and arm.retrain
    assert study.seeds == [3] and study.seed == 0  # trial seed; the data split's seed
    assert [n.model_dump(exclude_none=True) for n in study.retrain.noise] == [NOISE]
    assert not study.tune.space and study.search_space.options == OPTIONS


def test_rerun_refuses_a_study_run(store, capsys):
    assert main(["rerun", store.parent, "--tracking-uri", store.uri]) == 2
    assert "is not a search or retrain run" in capsys.readouterr().err


def test_ui_url_and_server_stay_on_loopback(store):
    from mlflow.tracking import MlflowClient

    assert study_experiment(MlflowClient(store.uri), None) == store.experiment
    with pytest.raises(RunError):
        study_experiment(MlflowClient(store.uri), "other")
    url = runs_table_url(5001, store.experiment)
    assert url == f"http://127.0.0.1:5001/#/experiments/{store.experiment}/runs?compareRunsMode=TABLE"
    command = server_command(store.uri, 5001)
    assert command[command.index("--host") + 1] == "127.0.0.1"


def test_reproducibility_record(store):
    from trainables.data.images import NamedImage

    images = [NamedImage("a", torch.zeros(4, 4, 1).numpy(), "x/a.png")]
    texts = record_texts({"seed": 1}, {"seed": 1, "resources": {}}, "search",
                         data_manifest(images), 0)
    record = json.loads(texts["reproducibility.json"])
    assert record["packages"]["torch"] == torch.__version__.split("+")[0] or \
        record["packages"]["torch"]
    assert record["seeds"] == {"trial": 1, "data_split": 0} and record["device"]["type"] == "cpu"
    assert record["git"] is None or len(record["git"]["commit"]) == 40
    changed = [NamedImage("a", torch.ones(4, 4, 1).numpy(), "x/a.png")]
    assert data_manifest(images) != data_manifest(changed)


@pytest.mark.slow  # starts an MLflow server
def test_sigterm_to_ui_stops_it_and_its_server(store):
    """A process manager's SIGTERM to `ui`: it exits, and its server and the server's
    workers are gone (the port refuses connections)."""
    import signal
    import socket
    import subprocess
    import sys

    import psutil

    from orchestrator.commands.ui import free_port

    port = free_port()
    process = subprocess.Popen([sys.executable, "-m", "orchestrator", "ui", "--tracking-uri",
                                store.uri, "--port", str(port)], text=True,
                               stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    try:
        assert process.stdout.readline().startswith(f"http://127.0.0.1:{port}/")  # it answers
        server = psutil.Process(process.pid).children(recursive=True)
        assert server  # the mlflow server and its workers
        process.send_signal(signal.SIGTERM)
        assert process.wait(30) == 0
        gone, alive = psutil.wait_procs(server, timeout=15)
        assert not alive, [p.cmdline()[:4] for p in alive]
        with pytest.raises(ConnectionRefusedError):
            socket.create_connection(("127.0.0.1", port), timeout=5).close()
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
