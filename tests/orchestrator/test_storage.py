"""`--storage`: URIs stay URIs on every code path, and a path some node of a multi-node
cluster cannot see is refused with one line (the probe is replaced here; the two-node
cluster test runs the real one)."""

from pathlib import Path

import pytest

from orchestrator.run.experiment import run_config
from orchestrator.run.storage import (
    PROBE_PREFIX,
    StorageError,
    check_storage,
    join,
    read_text,
    study_location,
    write_text,
)

TWO_NODES = {"a" * 56: "10.0.0.1", "b" * 56: "10.0.0.2"}


def never_called(path, node_ids):
    raise AssertionError("no probe expected")


def test_uris_stay_uris_and_paths_become_absolute(tmp_path, monkeypatch):
    assert study_location("s3://bucket/runs/", "hinas") == "s3://bucket/runs/hinas"
    assert study_location("gs://bucket", "hinas") == "gs://bucket/hinas"
    assert join("s3://bucket/runs/hinas", "invocation.json") == (
        "s3://bucket/runs/hinas/invocation.json")
    assert run_config("s3://bucket/runs/hinas", 0).storage_path == "s3://bucket/runs/hinas"
    monkeypatch.chdir(tmp_path)
    assert study_location("./runs", "hinas") == str(tmp_path.resolve() / "runs" / "hinas")


@pytest.mark.parametrize("scheme", ["", "file://"])
def test_small_files_round_trip_through_pyarrow(tmp_path, scheme):
    location = join(f"{scheme}{tmp_path}/runs/study", "invocation.json")
    assert read_text(location) is None
    write_text(location, '{"parent_run_id": "x"}')
    assert read_text(location) == '{"parent_run_id": "x"}'
    assert (tmp_path / "runs" / "study" / "invocation.json").is_file()


def test_uris_and_single_nodes_are_not_probed(tmp_path):
    check_storage("s3://bucket/runs", TWO_NODES, never_called)
    check_storage(str(tmp_path / "runs"), dict(list(TWO_NODES.items())[:1]), never_called)


def test_a_path_every_node_sees_passes_and_the_probe_file_goes(tmp_path):
    seen = []

    def every_node_sees(path, node_ids):
        seen.append(Path(path).is_file())
        return {node_id: True for node_id in node_ids}

    check_storage(str(tmp_path / "runs"), TWO_NODES, every_node_sees)
    assert seen == [True]
    assert not list((tmp_path / "runs").glob(f"{PROBE_PREFIX}*"))


def second_node_blind(path, node_ids):
    return {node_id: node_id.startswith("a") for node_id in node_ids}


def test_a_path_one_node_cannot_see_is_refused_in_one_line(tmp_path):
    with pytest.raises(StorageError) as refused:
        check_storage(str(tmp_path / "runs"), TWO_NODES, second_node_blind)
    message = str(refused.value)
    assert "\n" not in message and message.startswith(f"--storage {tmp_path / 'runs'}:")
    assert "bbbbbbbb (10.0.0.2)" in message and "aaaaaaaa" not in message
    assert "s3://" in message and "gs://" in message and "shares" in message
    assert not list((tmp_path / "runs").glob(f"{PROBE_PREFIX}*"))


def test_a_file_uri_is_probed_like_a_path(tmp_path):
    with pytest.raises(StorageError, match="bbbbbbbb"):
        check_storage(f"file://{tmp_path / 'runs'}", TWO_NODES, second_node_blind)
