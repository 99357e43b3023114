"""The commands around finished runs: `ui`, `compare`, `export`, `rerun`, `sync`.

`__all__` is what other packages may import; the modules are private to it."""

from typing import TYPE_CHECKING

from trainables import lazy_face

if TYPE_CHECKING:  # imported when first used (`lazy_face`)
    from orchestrator.commands.sync import sync_command
    from orchestrator.commands.tools import COMMANDS, URI_HELP, add_commands, run_command

__all__ = [
    "COMMANDS",
    "URI_HELP",
    "add_commands",
    "run_command",
    "sync_command",
]

__getattr__ = lazy_face(__name__)
