"""Superkernel NAS (Mozejko et al., CVPRW 2020; SPEC 4).

Modules: `distributions` (joint, factorized, filterwise and filterwise-attention
structural distributions, Gumbel-softmax / relaxed Bernoulli), `operations`
(the searchable op: the superkernel convolution, masks, "full" and "separate" modes), `blocks`
(DCR blocks with SkipInit, channel attention, up/down), `resunet` and
`attention_unet` (backbone bodies), `network` (the multi-subnetwork denoiser
around them), `supernet` (searched and no-superkernel supernets), `derived`
(distilled plain network), `views` (tables and diagram for the plots), `space`
(options, registration, genotype validation).
"""

from searchspaces.superkernel import (
    space,  # noqa: F401  (registers "superkernel")
    views,  # noqa: F401  (its plots' data)
)
from searchspaces.superkernel.space import SuperkernelOptions, SuperkernelSpace
from searchspaces.superkernel.supernet import FixedSupernet, SuperkernelSupernet

__all__ = ["FixedSupernet", "SuperkernelOptions", "SuperkernelSpace", "SuperkernelSupernet"]
