"""Search spaces: registry, genotypes and one module per NAS family.

Importing this package registers every built-in family.
"""

from searchspaces import (
    hinas,  # noqa: F401  (registers "hinas")
    modnas,  # noqa: F401  (registers "modnas")
    superkernel,  # noqa: F401  (registers "superkernel")
)
