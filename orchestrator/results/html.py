"""`report --html FILE`: a study's report as one self-contained HTML file, for clusters whose
MLflow UI is out of reach. Everything is inside it (pictures as data URIs, no script, no
link to fetch), so it opens from disk or an e-mail attachment with no server running.

Sections: each results table (its Markdown, published rows included, as an HTML table)
with its picture; the parent run's plots (Pareto front, Optuna history and importances);
each arm's best retrained network (architecture, sample restorations, its search's
architecture weights); and the provenance record.
"""

from __future__ import annotations

import base64
import html
import json
from typing import Any

import markdown

STYLE = """
body { font-family: system-ui, sans-serif; margin: 2em auto; max-width: 75em; color: #222; }
table { border-collapse: collapse; margin: 1em 0; font-size: 0.9em; }
th, td { border: 1px solid #bbb; padding: 0.25em 0.6em; }
th { background: #f0f0f0; } td { text-align: right; } td:first-child { text-align: left; }
img { max-width: 100%; border: 1px solid #ddd; margin: 0.5em 0; }
pre { background: #f7f7f7; padding: 1em; overflow-x: auto; font-size: 0.85em; }
figure { margin: 1em 0; } figcaption { color: #555; font-size: 0.85em; }
"""


def image(path: str, data: bytes) -> str:
    encoded = base64.b64encode(data).decode()
    name = html.escape(path)
    return (f'<figure><img alt="{name}" src="data:image/png;base64,{encoded}">'
            f"<figcaption>{name}</figcaption></figure>")


def table_sections(files: dict[str, bytes]) -> list[str]:
    """Each results table (`results/<group>.md`) and its picture."""
    sections = []
    for path in sorted(p for p in files if p.startswith("results/") and p.endswith(".md")):
        body = markdown.markdown(files[path].decode(), extensions=["tables"])
        picture = path.removesuffix(".md") + ".png"
        shown = image(picture, files[picture]) if picture in files else ""
        sections.append(f'<section class="table">{body}{shown}</section>')
    return sections


def picture_sections(files: dict[str, bytes], prefix: str, title: str) -> list[str]:
    paths = sorted(p for p in files if p.startswith(prefix) and p.endswith(".png"))
    if not paths:
        return []
    return [f"<h2>{title}</h2>", *(image(path, files[path]) for path in paths)]


def html_report(files: dict[str, bytes], record: dict[str, Any]) -> str:
    """The page: `files` as `report --out` writes them (artifact path -> bytes), `record` the
    provenance."""
    study = html.escape(str(record.get("study") or "study"))
    facts = ", ".join(f"{key} {html.escape(str(record.get(key)))}" for key in
                      ("parent_run_id", "status", "commit", "wall_time_s")
                      if record.get(key) is not None)
    parts = [f"<h1>Study {study}</h1>", f"<p>{facts}</p>", "<h2>Results</h2>",
             *table_sections(files),
             *picture_sections(files, "plots/", "Search and tuning plots"),
             *picture_sections(files, "pictures/", "Best retrained networks"),
             "<h2>Provenance</h2>",
             f"<pre>{html.escape(json.dumps(record, indent=2))}</pre>"]
    return ("<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            f"<title>Study {study}</title><style>{STYLE}</style></head><body>\n"
            + "\n".join(parts) + "\n</body></html>\n")
