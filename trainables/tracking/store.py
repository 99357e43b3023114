"""Where a study's MLflow store is when none is named: nothing here imports MLflow, so that
a command that only needs the address (`validate`) starts in a moment."""

from __future__ import annotations

import os
from pathlib import Path

LOCAL_STORE = "mlruns-local"  # the default store's folder: SQLite file and artifacts
DEFAULT_DB = f"{LOCAL_STORE}/mlflow.db"


def default_tracking_uri(cwd: str | Path | None = None) -> str:
    """A SQLite file under ./mlruns-local/: nothing to start by hand."""
    return f"sqlite:///{Path(cwd or os.getcwd()).resolve() / DEFAULT_DB}"


def artifact_root_for(uri: str) -> str | None:
    """Artifacts beside a local SQLite store (`artifacts/` in the default store's folder,
    else `mlartifacts/`); a server chooses its own."""
    if uri.startswith("sqlite:///"):
        folder = Path(uri.removeprefix("sqlite:///")).parent
        name = "artifacts" if folder.name == LOCAL_STORE else "mlartifacts"
        return (folder / name).resolve().as_uri()
    return None


def prepare_local_store(uri: str) -> None:
    """Create the folder of a SQLite store (SQLite creates the file, not its folder)."""
    if uri.startswith("sqlite:///"):
        Path(uri.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)


def store_exists(uri: str) -> bool:
    """A look-up must not create a SQLite store (a dry run, or a study refused before it
    starts, logs nothing)."""
    return not uri.startswith("sqlite:///") or Path(uri.removeprefix("sqlite:///")).exists()
