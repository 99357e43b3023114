"""HiNAS `variant: code` reproduces the outputs of the official networks (hkzhang91/HiNAS,
commit fc56724fde81870ac90bd6d87075f0d1284b1f8c), recorded in data/hinas_official/.

The fixture (data/hinas_official/README.md says how it was made): our derived network of
the official 3c4n genotype at width 4 and our supernet at width 2 (3 layers, 4 nodes), in
eval mode with seeded weights and seeded BatchNorm statistics (and affine parameters where
affine), their state dicts, a seeded 1 x 1 x 32 x 32 input, and the outputs the official
networks gave for that input after the same weights were copied into them on CPU:

- derived: `Dn_compnet` (one_stage_nas/modeling/dn_compnet.py, with darts/cell.py FixCell,
  darts/operations.py, modeling/common.py and modeling/decoders.py Dn_Decoder), configured
  by configs/dn/BSD500_3c4n/03_train_CR_R0/train_s30.yaml at FILTER_MULTIPLIER 4.
  Our output equalled it bit for bit when recorded; checked here with atol 1e-6.
- supernet: `Dn_supernet` (one_stage_nas/modeling/dn_supernet.py, with darts/cell.py Cell
  and modeling/decoders.py Dn_AutoDecoder), configured by
  configs/dn/BSD500_3c4n/03_search_CR_R0.yaml at FILTER_MULTIPLIER 2, seeded random
  alphas and betas (the official -50 on the moves its beta mask excludes). Largest
  difference 4.2e-7 when recorded; checked with atol 1e-5.

Mutations of our code tried, each applied alone and reverted; every one fails this test:
- an operation's dilation (`dil_3x3` built with dilation 1 instead of 2 in
  searchspaces/hinas/operations.py): both tests fail;
- a node's two inputs swapped (the derived cell's forward pairing each node's ops with its
  inputs in reverse order, searchspaces/hinas/cells.py DerivedCell): the derived test fails;
- the decoder's concatenation order swapped ([last, endpoint] instead of [endpoint, last],
  searchspaces/hinas/blocks.py Decoder): the derived test fails.
"""

from __future__ import annotations

from pathlib import Path

import torch

from searchspaces.genotype import Genotype
from searchspaces.hinas.operations import JOURNAL_PRIMITIVES
from searchspaces.registry import get_space

DATA = Path(__file__).parent / "data" / "hinas_official"
SPACE = get_space("hinas")
# the official 3c4n genotype (studies/genotypes/hinas-official-3c4n.json): one cell, every layer
CELL = [[["conv_3x3", 0], ["sep_3x3", 1]], [["dil_3x3", 1], ["skip", 2]],
        [["sep_5x5", 0], ["dil_5x5", 3]], [["conv_3x3", 2], ["sep_3x3", 4]]]
LEVELS = [1, 2, 2]
DERIVED_OPTIONS = {"width": 4, "variant": "code"}
SUPERNET_OPTIONS = {"width": 2, "num_layers": 3, "num_nodes": 4, "variant": "code"}


def load(name: str):
    return torch.load(DATA / name, map_location="cpu", weights_only=True)


def unpack(packed: dict, model: torch.nn.Module) -> dict[str, torch.Tensor]:
    """The state dict stored as one flat float32 tensor, in the model's dtypes."""
    reference = model.state_dict()
    values = packed["values"].split([torch.Size(s).numel() for s in packed["shapes"]])
    return {name: value.reshape(shape).to(reference[name].dtype if name in reference
                                          else value.dtype)
            for name, shape, value in zip(packed["names"], packed["shapes"], values)}


def run(model: torch.nn.Module, packed: dict, image: torch.Tensor) -> torch.Tensor:
    model.load_state_dict(unpack(packed, model), strict=True)
    model.eval()
    with torch.no_grad():
        return model(image)


def test_derived_network_matches_official_dn_compnet():
    arch = {"cells": [CELL] * 3, "levels": LEVELS, "num_nodes": 4, "layerwise": True,
            "residual": True}
    model = SPACE.build_derived(Genotype("hinas", JOURNAL_PRIMITIVES, arch), DERIVED_OPTIONS, 1)
    io = load("io.pt")
    out = run(model, load("derived_w4.pt"), io["input"])
    torch.testing.assert_close(out, io["derived"], rtol=0, atol=1e-6)


def test_supernet_matches_official_dn_supernet():
    model = SPACE.build_supernet(SUPERNET_OPTIONS, 1)
    io = load("io.pt")
    out = run(model, load("supernet_w2_n4.pt"), io["input"])
    torch.testing.assert_close(out, io["supernet"], rtol=0, atol=1e-5)
