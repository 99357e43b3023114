"""The commands around finished runs: `ui`, `compare`, `export`, `rerun`.

`__all__` is what other packages may import; the modules are private to it."""

from orchestrator.commands.tools import COMMANDS, URI_HELP, add_commands, run_command

__all__ = [
    "COMMANDS",
    "URI_HELP",
    "add_commands",
    "run_command",
]
