"""HiNAS search space (Zhang et al., "Memory-Efficient Hierarchical Neural Architecture
Search for Image Restoration", IJCV 2022, the journal version).

Modules: `operations` (op table), `blocks` (stem, projections, end parts), `cells`
(mixed op, the search cell in its reference, fused and stacked forms, derived cell,
DARTS derivation), `batchnorms` (the BatchNorms with folded op weights of the fast
forms), `topology` (edge numbering), `supernet` (outer space, routing, cell sharing),
`viterbi` (width derivation), `derived` (discrete network), `views` (tables and diagram
for the plots), `options` (the options model and the code/paper variants), `space` (registration,
genotype validation).
"""

from searchspaces.hinas import (
    space,  # noqa: F401  (registers "hinas")
    views,  # noqa: F401  (its plots' data)
)
from searchspaces.hinas.options import HiNASOptions
from searchspaces.hinas.space import HiNASSpace
from searchspaces.hinas.supernet import HiNASSupernet

__all__ = ["HiNASOptions", "HiNASSpace", "HiNASSupernet"]
