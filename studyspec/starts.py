"""Where a derived network starts (`retrain.from`): the searched supernet's trained weights
("inherit", the single-shot procedure of Superkernel NAS: Mozejko et al. 2020, abstract and
Sec. 4.5.5) or a fresh initialisation ("scratch"); the default is the space's.
"""

from __future__ import annotations

from typing import Any, Literal

Start = Literal["inherit", "scratch"]
RETRAIN_EPOCHS = 10  # retrain.epochs left out, from scratch (inherited: 0, test only)


def start_of(search_space: Any, start: Any) -> Any:
    """`retrain.from` of a raw study, the space's default when left out (None: unknown)."""
    from searchspaces.registry import get_space

    if start is not None or not isinstance(search_space, dict):
        return start
    try:
        return "inherit" if get_space(str(search_space.get("name"))).can_inherit else "scratch"
    except KeyError:  # an unknown space is reported by SearchSpaceSpec
        return None


def inheriting_spaces() -> str:
    """Names of the spaces whose derived networks can inherit their supernet's weights."""
    from searchspaces.registry import get_space, space_names

    return ", ".join(name for name in space_names() if get_space(name).can_inherit)
