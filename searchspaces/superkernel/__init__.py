"""Superkernel NAS (Mozejko et al., "Superkernel Neural Architecture Search for Image
Denoising", CVPRW 2020).

Modules: `distributions` (joint, factorized, filterwise and filterwise-attention
structural distributions, Gumbel-softmax / relaxed Bernoulli), `operations`
(the searchable op: the superkernel convolution, masks, "full" and "separate" modes), `blocks`
(DCR blocks with SkipInit, channel attention, up/down), `resunet` and
`attention_unet` (backbone bodies), `network` (the multi-subnetwork denoiser
around them), `supernet` (searched and no-superkernel supernets), `derived`
(distilled plain network), `inherit` (weights of the supernet for it), `temperature`
(the Gumbel temperature schedule), `views` (tables and diagram for the plots),
`options` (the options model), `space` (registration, genotype validation).
"""

from searchspaces.superkernel import (
    space,  # noqa: F401  (registers "superkernel")
    views,  # noqa: F401  (its plots' data)
)
from searchspaces.superkernel.options import SuperkernelOptions
from searchspaces.superkernel.space import SuperkernelSpace
from searchspaces.superkernel.supernet import FixedSupernet, SuperkernelSupernet

__all__ = ["FixedSupernet", "SuperkernelOptions", "SuperkernelSpace", "SuperkernelSupernet"]
