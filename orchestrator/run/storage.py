"""Where a study's Tune experiment lives (`--storage`): a local or shared folder, or a URI.

A URI (`s3://bucket/runs`, `gs://...`, anything with a scheme that pyarrow resolves) is
handed to Ray Tune as it is, and the study's own small files (the invocation record)
are read and written through pyarrow too; a path is made absolute on the driver.

On a cluster of several nodes, every trial uploads its checkpoints to the storage from
the node it runs on, so a folder that only the driver's machine has would scatter them
over the nodes' disks (and Tune would fail the first checkpoint of a remote trial). The
study therefore probes a path before starting: one tiny task pinned to each alive node
looks for a file the driver has just written there.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable
from pathlib import Path

import ray
from fsspec.implementations.local import LocalFileSystem
from pyarrow import fs

PROBE_PREFIX = ".storage-probe-"


class StorageError(ValueError):
    """`--storage` cannot serve the cluster (a node cannot see it)."""


def is_uri(storage: str) -> bool:
    return "://" in storage


def local_path(storage: str) -> Path | None:
    """The folder a path or `file://` URI names; None for remote URIs (s3://, gs://, ...)."""
    if storage.startswith("file://"):
        return Path(storage.removeprefix("file://"))
    return None if is_uri(storage) else Path(storage)


class AtomicFile:
    """A file written under a temporary name beside its path and renamed over it when
    closed after writes that all succeeded; a failed write (a full disk) removes the
    temporary file at once and leaves the previous version of the file as it was."""

    def __init__(self, path: str, mode: str):
        self.path, self.partial = path, f"{path}.{uuid.uuid4().hex[:8]}.partial"
        self.file = open(self.partial, mode)  # noqa: SIM115  (closed by close())
        self.failed = False

    def write(self, data) -> int:
        try:
            return self.file.write(data)
        except BaseException:
            self.discard()
            raise

    def discard(self) -> None:
        self.failed = True
        try:
            self.file.close()
        except OSError:
            pass
        Path(self.partial).unlink(missing_ok=True)

    def close(self) -> None:
        if self.failed or self.file.closed:
            return
        try:
            self.file.close()  # flushes: may fail too
        except BaseException:
            self.discard()
            raise
        os.replace(self.partial, self.path)

    @property
    def closed(self) -> bool:
        return self.failed or self.file.closed

    def __getattr__(self, name: str):
        return getattr(self.file, name)


class AtomicLocalFileSystem(LocalFileSystem):
    """fsspec's local filesystem, every file written through `AtomicFile`."""

    def _open(self, path, mode="rb", block_size=None, **kwargs):
        if "w" in mode:
            path = self._strip_protocol(path)
            if self.auto_mkdir:
                self.makedirs(self._parent(path), exist_ok=True)
            return AtomicFile(path, mode)
        return super()._open(path, mode, block_size, **kwargs)


def storage_filesystem(storage: str) -> fs.FileSystem | None:
    """What Ray Tune writes a local `--storage` folder through: atomic files, so that a full
    disk cuts no experiment state, searcher state or checkpoint file short (a resumed study
    reads the last complete one). Remote storage: Tune's own choice (None)."""
    if local_path(storage) is None:
        return None
    return fs.PyFileSystem(fs.FSSpecHandler(AtomicLocalFileSystem(auto_mkdir=True)))


def study_location(storage: str, name: str) -> str:
    """`<storage>/<study name>`: a URI stays a URI, a path becomes absolute."""
    if is_uri(storage):
        return f"{storage.rstrip('/')}/{name}"
    return str(Path(storage).resolve() / name)


SPOOL_FOLDER = "tracking-spool"  # unsent MLflow writes, in a study's local storage


def spool_location(study_folder: str) -> str | None:
    """`<storage>/<study>/tracking-spool` for a local (or shared) folder, which every node
    sees: a node that is lost leaves its unsent writes to the driver. None for remote
    storage (the user's cache then)."""
    path = local_path(study_folder)
    return str(path / SPOOL_FOLDER) if path is not None else None


def join(location: str | Path, name: str) -> str:
    return f"{str(location).rstrip('/')}/{name}"


def read_text(location: str) -> str | None:
    """The file's text, None when it does not exist."""
    filesystem, path = fs.FileSystem.from_uri(location)
    if filesystem.get_file_info(path).type != fs.FileType.File:
        return None
    with filesystem.open_input_stream(path) as stream:
        return stream.read().decode()


def write_text(location: str, text: str) -> None:
    """Write the file, creating its folders."""
    filesystem, path = fs.FileSystem.from_uri(location)
    filesystem.create_dir(path.rpartition("/")[0], recursive=True)
    with filesystem.open_output_stream(path) as stream:
        stream.write(text.encode())


@ray.remote(num_cpus=0)
def _sees(path: str) -> bool:
    return Path(path).is_file()


def probe_nodes(path: str, node_ids: list[str]) -> dict[str, bool]:
    """node id -> whether a task pinned to that node finds the file at `path`."""
    from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

    pending = [_sees.options(scheduling_strategy=NodeAffinitySchedulingStrategy(
        node_id, soft=False)).remote(path) for node_id in node_ids]
    return dict(zip(node_ids, ray.get(pending)))


def alive_nodes() -> dict[str, str]:
    """node id -> IP address of every alive node of the connected cluster."""
    return {node["NodeID"]: node["NodeManagerAddress"] for node in ray.nodes() if node["Alive"]}


def check_storage(storage: str, nodes: dict[str, str] | None = None,
                  probe: Callable[[str, list[str]], dict[str, bool]] = probe_nodes) -> None:
    """Refuse a path that some node of a multi-node cluster cannot see (remote URIs pass)."""
    nodes = alive_nodes() if nodes is None else nodes
    if local_path(storage) is None or len(nodes) < 2:
        return
    folder = local_path(storage).resolve()
    folder.mkdir(parents=True, exist_ok=True)
    marker = folder / f"{PROBE_PREFIX}{uuid.uuid4().hex}"
    marker.write_text("written by the driver; every node should see it\n")
    try:
        blind = [node_id for node_id, sees in probe(str(marker), list(nodes)).items()
                 if not sees]
    finally:
        marker.unlink(missing_ok=True)
    if blind:
        names = ", ".join(f"{node_id[:8]} ({nodes[node_id]})" for node_id in blind)
        raise StorageError(
            f"--storage {storage}: {folder} is local to the driver's machine (not seen by "
            f"node(s) {names} of this {len(nodes)}-node cluster); use a folder every node "
            "shares (e.g. an NFS mount) or an s3:// / gs:// URI (via pyarrow)")
