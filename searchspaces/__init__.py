"""Search spaces: registry, genotypes and one module per NAS family.

Importing this package registers every built-in family.
"""

from searchspaces import (
    baselines,  # noqa: F401  (registers "dncnn", a fixed reference)
    hinas,  # noqa: F401  (registers "hinas")
    modnas,  # noqa: F401  (registers "modnas")
    superkernel,  # noqa: F401  (registers "superkernel")
)
