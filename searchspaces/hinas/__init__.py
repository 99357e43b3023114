"""HiNAS search space (Zhang et al., journal version; SPEC 2).

Modules: `operations` (op table), `blocks` (stem, projections, head), `cells`
(mixed op, search and derived cells, DARTS derivation), `supernet` (outer
space, routing, cell sharing), `viterbi` (width derivation), `derived`
(discrete network), `space` (options, registration, genotype validation).
"""

from searchspaces.hinas import space  # noqa: F401  (registers "hinas")
from searchspaces.hinas.space import HiNASOptions, HiNASSpace
from searchspaces.hinas.supernet import HiNASSupernet

__all__ = ["HiNASOptions", "HiNASSpace", "HiNASSupernet"]
