"""The single-shot start of a derived network (`retrain.from: inherit`; Mozejko et al.
2020, abstract and Sec. 4.5.5): the search trial logs its supernet's weights at the best
evaluation as an MLflow artifact; the retrain trial fetches them through the search
run id its config carries (so it may run on another node) and its space maps them onto
the derived network (`SearchSpace.inherit`).
"""

from __future__ import annotations

import io
import tempfile
from typing import Any

import torch

from searchspaces.genotype import Genotype
from searchspaces.registry import build_derived_from_genotype, get_space

SUPERNET_ARTIFACT = "weights/supernet_best.pt"  # the search run's best supernet state dict


def supernet_bytes(weights: dict[str, torch.Tensor]) -> bytes:
    buffer = io.BytesIO()
    torch.save(weights, buffer)
    return buffer.getvalue()


def fetch_supernet(client: Any, run_id: str) -> dict[str, torch.Tensor]:
    """The best supernet weights the search run `run_id` logged."""
    if not run_id:
        raise ValueError("retrain.from: inherit needs the weights of a search run, and this "
                         "retraining has none (a given genotype: use retrain.from: scratch)")
    with tempfile.TemporaryDirectory() as folder:
        path = client.download_artifacts(run_id, SUPERNET_ARTIFACT, folder)
        return torch.load(path, map_location="cpu", weights_only=True)


def inherited_weights(study, genotype: Genotype,
                      supernet_state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The derived network's state dict, mapped from the searched supernet's weights."""
    space, channels = get_space(genotype.space), 3 if study.data.color else 1
    supernet = space.build_supernet(study.search_space.resolved_options(), channels)
    supernet.load_state_dict(supernet_state, strict=True)
    derived = build_derived_from_genotype(genotype, study.retrain_options(), channels)
    space.inherit(supernet, genotype, derived)
    return derived.state_dict()
