"""The parent run's description (its `mlflow.note.content` tag, the first thing its MLflow
page shows) ends with the study's group tables in markdown, replaced whenever the report is
rebuilt; tables that do not fit MLflow's tag limit are named, not cut."""

from __future__ import annotations

from collections.abc import Sequence

NOTE_TAG = "mlflow.note.content"
HEADING = "\n\n---\n\n### Results\n"
LIMIT = 8_000  # characters MLflow keeps in a tag


def described(note: str, tables: Sequence[tuple[str, str]]) -> str:
    """`note` (without any earlier results) and then each (artifact path, markdown) table
    that fits, in order."""
    text = note.split(HEADING)[0] + HEADING
    text += "Rebuilt by `python -m orchestrator report`; also under Artifacts, `results/`.\n"
    left = [path for path, _ in tables]
    for path, table in tables:
        rest = f"\n(not shown here: {', '.join(left)})\n"
        if len(text) + len(table) + 1 + len(rest) > LIMIT:
            return text + rest
        text += "\n" + table
        left.remove(path)
    return text
