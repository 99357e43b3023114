"""Where a trial runs: the Ray node as MLflow tags, set when its run is created and again
whenever a restarted trial reopens it (Tune may restart a trial on another node)."""

from __future__ import annotations

import ray


def node_tags() -> dict[str, str]:
    """`ray.node_id` and `ray.node_ip` of the process calling it (a trial's worker)."""
    return {"ray.node_id": ray.get_runtime_context().get_node_id(),
            "ray.node_ip": ray.util.get_node_ip_address()}
