"""Manual outer widths (HiNAS journal Sec. 4.3, Table 3, Fig. 7): `layer_widths` retrains the
searched cells with every layer at a given node width instead of its searched level:
HiNAS-w40 (every cell at 40) and HiNAS-wm (20, then doubling layer by layer)."""

from __future__ import annotations

import pytest
import torch

from orchestrator.study.reading import StudyError, validate
from searchspaces.genotype import Genotype
from searchspaces.registry import get_space

SPACE = get_space("hinas")
OFFICIAL = Genotype.load("studies/genotypes/hinas-official-3c4n.json")  # levels [1, 2, 2]
RETRAIN = {"num_layers": 3, "num_nodes": 4, "width": 20}


def count(options) -> int:
    net = SPACE.build_derived(OFFICIAL, {**RETRAIN, **options}, 1)
    image = torch.rand(1, 1, 24, 24)
    assert net(image).shape == image.shape
    return sum(p.numel() for p in net.parameters())


@pytest.mark.parametrize("widths,code,paper", [
    (None, 424_669, 402_797),  # the searched path [1, 2, 2]: node widths 30, 40, 40
    ((40, 40, 40), 470_849, 448_977),  # HiNAS-w40 (the paper's Table 3: 0.57M)
    ((20, 40, 80), 702_969, 752_777),  # HiNAS-wm (the paper's Table 3: 0.75M)
])
def test_manual_widths_set_every_cells_node_width(widths, code, paper):
    """Counts of the official genotype's cells at each path. Table 3's searched network has
    0.34M parameters (the [0, 1, 2] path's 345,349 under variant code, test_hinas_official),
    so its cells are not the official genotype's; the w40 / wm rows are for other cells too
    and are not expected to match these counts. Under `decoder: code` manual widths take
    the stem's reduction as the decoder's endpoint (no cell has the level-0 width)."""
    options = {} if widths is None else {"layer_widths": list(widths)}
    assert count(options) == code
    assert count({**options, "variant": "paper"}) == paper
    if widths is not None:
        net = SPACE.build_derived(OFFICIAL, {**RETRAIN, **options}, 1)
        assert [p.conv.out_channels for p in net.previous] == list(widths)


def test_layer_widths_name_the_key_when_they_do_not_fit():
    study = {"name": "w", "data": {"train": "embedded", "test": ["embedded"], "patch_size": 16},
             "search_space": {"name": "hinas", "options": {"num_layers": 2, "width": 4}},
             "retrain": {"space_options": {"layer_widths": [8, 8, 8]}}}
    with pytest.raises(StudyError, match=r"retrain\.space_options\.layer_widths") as error:
        validate(study)
    assert len(str(error.value).splitlines()) == 1
    study["retrain"]["space_options"]["layer_widths"] = [8, 0]
    with pytest.raises(StudyError, match=r"layer_widths"):
        validate(study)
    study["retrain"]["space_options"]["layer_widths"] = [8, 16]
    validate(study)
