"""The registered names of the search-space families, defined once.

Every module of a family that needs its own name (registration, genotype checks,
views) imports it from here, so a family is renamed in one place.
"""

HINAS = "hinas"  # HiNAS (journal and CVPR'20 versions), searchspaces/hinas
MODNAS = "modnas"  # MoD-NAS, searchspaces/modnas
SUPERKERNEL = "superkernel"  # Superkernel NAS, searchspaces/superkernel
