"""MoD-NAS search space ("Searching Efficient Model-guided Deep Network for Image
Denoising").

Modules: `operations` (the normal / down / up candidate sets), `skeleton` (the
U-net frame shared by the searchable and the derived denoiser), `unet`
(searchable U-net: mixed ops with per-channel gates, dense depth blocks, and
their derivation rules), `unfolding` (model-guided T-stage unfolding and the
supernet), `plan` (channel plan and parameter count of a genotype), `derived`
(the discrete, physically narrower network), `arch` (typed genotype checks), `views`
(tables and diagram for the plots), `options` (the options model), `space`
(registration, genotype format).
"""

from searchspaces.modnas import (
    space,  # noqa: F401  (registers "modnas")
    views,  # noqa: F401  (its plots' data)
)
from searchspaces.modnas.options import ModNASOptions
from searchspaces.modnas.space import ModNASSpace
from searchspaces.modnas.supernet import ModNASSupernet

__all__ = ["ModNASOptions", "ModNASSpace", "ModNASSupernet"]
