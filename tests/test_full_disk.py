"""A study whose storage fills up mid-study: the trial that cannot write its checkpoint says
where and how much is free, the study stops with its state saved (exit 1, one line), and
`--resume` once space is freed continues that trial from its previous checkpoint in the same
MLflow run, every epoch logged once.

The storage is a real 1.5 MiB tmpfs when this process may mount one (root with
CAP_SYS_ADMIN, as on CI), so that Tune's own state files meet the full disk too; elsewhere a
write hook raises ENOSPC in the checkpoint's copy (`faults`, action `nospace`)."""

import os
import subprocess
import sys
from contextlib import contextmanager

import pytest
from mlflow.tracking import MlflowClient

from orchestrator.run.storage import AtomicFile, storage_filesystem

STUDY = """
name: full
data: {train: embedded, test: [embedded], patch_size: 24, max_train_images: 8,
       noise: {type: awgn, sigma: 25}}
search_space: {name: hinas, options: {num_layers: 2, num_nodes: 2, width: 4, stem_channels: 8}}
search: {epochs: 4, steps_per_epoch: 3, batch_size: 2, warmup_epochs: 1, val_crop: 32}
retrain: {epochs: 2, steps_per_epoch: 2, batch_size: 2, space_options: {width: 4},
          cost: {input_size: 64, repeats: 1}}
"""
TMPFS_SIZE = "1500k"  # the first search checkpoint (about 0.6 MB) fits, the second does not


def run(command: list[str], env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "orchestrator", *command], text=True,
                          capture_output=True, env={**os.environ, **env}, timeout=400)


@contextmanager
def small_disk(folder):
    """A 1.5 MiB tmpfs at `folder` (True), or nothing (False) where mounting is not allowed."""
    folder.mkdir()
    try:
        mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={TMPFS_SIZE}", "tmpfs",
                                  str(folder)], capture_output=True).returncode == 0
    except OSError:  # no mount command
        mounted = False
    try:
        yield mounted
    finally:
        if mounted:
            subprocess.run(["umount", "-l", str(folder)], check=False)


def steps(client: MlflowClient, run_id: str) -> list[int]:
    return sorted(m.step for m in client.get_metric_history(run_id, "train/loss"))


@pytest.mark.slow  # a study through Ray Tune, stopped and resumed
def test_a_full_storage_stops_the_study_and_resume_continues(tmp_path, faults):
    study = tmp_path / "full.yaml"
    study.write_text(STUDY)
    storage = tmp_path / "storage"
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    args = ["study", str(study), "--tracking-uri", uri, "--storage", str(storage),
            "--verbose", "0"]
    with small_disk(storage) as mounted:
        env = faults.env("log", -1) if mounted else faults.env("nospace", 1)
        stopped = run(args, env)
        assert stopped.returncode == 1, stopped.stderr[-3000:]
        last = stopped.stderr.strip().splitlines()[-1]
        assert last.startswith("study full stopped (") and "--resume" in last
        assert f"no space left on the device writing the checkpoint of epoch 1 in {storage}" \
            in last and "MiB free)" in last
        assert not list(storage.rglob("*.partial"))  # no file cut short is left behind
        client = MlflowClient(uri)
        experiment = client.get_experiment_by_name("full").experiment_id
        (search,) = client.search_runs([experiment], "tags.phase = 'search'")
        assert search.info.status == "KILLED" and "no space left" in search.data.tags["stopped"]
        assert steps(client, search.info.run_id) == [0, 1]  # epoch 1 logged, not checkpointed
        if mounted:
            subprocess.run(["mount", "-o", "remount,size=64m", str(storage)], check=True)
        before = len(faults.attempts())
        resumed = run([*args, "--resume"], faults.env("log", -1))
        assert resumed.returncode == 0, resumed.stderr[-3000:]
    runs = client.search_runs([experiment])
    assert sorted(r.data.tags["phase"] for r in runs) == ["retrain", "search", "study"]
    assert {r.info.status for r in runs} == {"FINISHED"}
    assert steps(client, search.info.run_id) == [0, 1, 2, 3]  # the same run, each epoch once
    after = [epoch for _, run_id, epoch in faults.attempts()[before:]
             if run_id == search.info.run_id]
    assert after[0] == 1  # from the checkpoint of epoch 0: epoch 1 again, not from scratch


def test_an_atomic_file_cut_short_leaves_the_previous_version(tmp_path):
    """The storage's files are written under a temporary name and renamed when complete: a
    write that fails for lack of space leaves the previous file whole and no partial one."""
    filesystem = storage_filesystem(str(tmp_path))
    target = str(tmp_path / "study" / "experiment_state.json")
    with filesystem.open_output_stream(target) as stream:
        stream.write(b'{"complete": true}')
    assert (tmp_path / "study" / "experiment_state.json").read_bytes() == b'{"complete": true}'

    class Full:
        closed = False

        def write(self, data):
            raise OSError(28, "No space left on device")

        def close(self):
            self.closed = True

    broken = AtomicFile(target, "wb")
    broken.file.close()
    broken.file = Full()
    with pytest.raises(OSError):
        broken.write(b'{"compl')
    broken.close()
    assert (tmp_path / "study" / "experiment_state.json").read_bytes() == b'{"complete": true}'
    assert [p.name for p in (tmp_path / "study").iterdir()] == ["experiment_state.json"]
