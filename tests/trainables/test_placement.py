"""A trial's run names the Ray node it runs on, and a trial restarted on another node (from
its checkpoint, or before its first one) moves the tag with it. Without Ray: Tune's trial
context and checkpoint are stand-ins."""

import json
import types

import torch
from ray import tune

from trainables.tracking.runs import Tracker
from trainables.tune import session as tune_session


def test_a_restarted_trial_retags_its_run_with_the_new_node(tmp_path, monkeypatch):
    tracker = Tracker(f"sqlite:///{tmp_path / 'mlflow.db'}")
    experiment_id = tracker.experiment_id("placed")
    parent = tracker.start_run(experiment_id, "placed", {"phase": "study"})
    context = tune_session.TrialContext(tracker.uri, experiment_id, parent, "placed")
    node = {"id": "node-a"}
    monkeypatch.setattr(tune_session, "node_tags", lambda: {"ray.node_id": node["id"]})
    trial = types.SimpleNamespace(get_trial_id=lambda: "t1")
    monkeypatch.setattr(tune_session.tune, "get_context", lambda: trial)
    checkpoint = {"value": None}
    monkeypatch.setattr(tune_session.tune, "get_checkpoint", lambda: checkpoint["value"])

    def open_trial() -> str:
        return tune_session.TrialSession.open(context, "search", {"arm": "a"},
                                              {"search_space": {"name": "hinas"}}).run_id

    def node_tag(run_id: str) -> str:
        return tracker.client.get_run(run_id).data.tags["ray.node_id"]

    run_id = open_trial()
    assert node_tag(run_id) == "node-a"
    node["id"] = "node-b"  # lost its node before the first checkpoint
    assert open_trial() == run_id and node_tag(run_id) == "node-b"
    folder = tmp_path / "checkpoint"
    folder.mkdir()
    (folder / tune_session.RUN_FILE).write_text(json.dumps({"run_id": run_id}))
    torch.save({}, folder / tune_session.STATE_FILE)
    checkpoint["value"], node["id"] = tune.Checkpoint.from_directory(str(folder)), "node-c"
    assert open_trial() == run_id and node_tag(run_id) == "node-c"
