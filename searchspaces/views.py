"""What a search space shows of itself, as plain data for the plots of a trial:
the architecture distributions of a supernet as labelled tables, and a genotype as a
diagram of positioned boxes and arrows.

Every family registers a `SpaceViews` under its space name (`@register_views`, in its
own `views.py`); a space without one (the `dncnn` baseline) gets the generic views: no
tables, and the genotype's `arch` fields as text in one box. Drawing lives in
`trainables.plots`, which knows nothing of any family.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch

from searchspaces.genotype import Genotype

PROBABILITY = "probability"  # unit of a table whose rows are distributions (colour scale 0-1)


@dataclass(frozen=True)
class WeightTable:
    """A 2-D view of architecture parameters: one row per layer/edge/slot, one column per
    candidate; `values` is (len(rows), len(columns)), NaN where a row has no such candidate."""

    name: str  # panel title and key of the table's history, e.g. "alpha, layer 0"
    rows: tuple[str, ...]
    columns: tuple[str, ...]
    values: torch.Tensor  # (rows, columns), detached, on the CPU
    unit: str = PROBABILITY  # or e.g. "gate": colour scale 0 .. the largest value seen


@dataclass(frozen=True)
class Box:
    key: str  # what arrows refer to
    label: str  # may hold several lines
    x: float  # centre, in panel units (about one text line per unit)
    y: float
    kind: str = "node"  # "input", "node", "block", "output": its colour


@dataclass(frozen=True)
class Arrow:
    source: str
    target: str
    label: str = ""  # e.g. the operation on this edge
    bend: float = 0.0  # curvature (matplotlib arc3 rad); 0 is straight
    dashed: bool = False  # e.g. a skip connection


@dataclass(frozen=True)
class Panel:
    title: str
    boxes: tuple[Box, ...]
    arrows: tuple[Arrow, ...] = ()


@dataclass(frozen=True)
class Diagram:
    title: str
    panels: tuple[Panel, ...]


class SpaceViews:
    """The generic views; families override what they can show better."""

    def weight_tables(self, supernet: Any) -> list[WeightTable]:
        """The supernet's architecture distributions now (softmaxed), as labelled tables."""
        return []

    def diagram(self, genotype: Genotype) -> Diagram:
        lines = [f"{key}: {json.dumps(value)[:80]}" for key, value in genotype.arch.items()]
        box = Box("arch", "\n".join(lines), 0.0, 0.0, "block")
        return Diagram(f"{genotype.space} {genotype.arch_hash()}",
                       (Panel("architecture", (box,)),))


_VIEWS: dict[str, SpaceViews] = {}
_GENERIC = SpaceViews()


def register_views(name: str) -> Callable[[type[SpaceViews]], type[SpaceViews]]:
    """Class decorator: instantiate and register the views of space `name`."""

    def register(cls: type[SpaceViews]) -> type[SpaceViews]:
        if name in _VIEWS:
            raise ValueError(f"views of search space {name!r} registered twice")
        _VIEWS[name] = cls()
        return cls

    return register


def views_for(name: str) -> SpaceViews:
    return _VIEWS.get(name, _GENERIC)


def table(name: str, rows: list[str], columns: list[str], values: list[torch.Tensor],
          unit: str = PROBABILITY) -> WeightTable:
    """A table from one 1-D tensor per row, NaN-padded to the number of columns."""
    matrix = torch.full((len(rows), len(columns)), float("nan"))
    for index, row in enumerate(values):
        row = row.detach().float().cpu().flatten()
        matrix[index, : len(row)] = row
    return WeightTable(name, tuple(rows), tuple(columns), matrix, unit)


def unet_panel(title: str, stem: str, encoders: list[str], bottom: str, decoders: list[str],
               downs: list[str], ups: list[str], head: str) -> Panel:
    """A U-net drawn as a U: `encoders[l]` / `decoders[l]` label the blocks of level l
    above the bottom (level 0 first), `downs[l]` / `ups[l]` the arrows between levels l
    and l + 1, and skip connections join the encoder and decoder of every level."""
    levels = len(encoders)
    step_x, step_y = 5.0, 3.5
    boxes = [Box("stem", stem, -step_x, 0.0, "input")]
    boxes += [Box(f"enc{lv}", text, lv * step_x, -lv * step_y, "block")
              for lv, text in enumerate(encoders)]
    boxes.append(Box("bottom", bottom, levels * step_x, -levels * step_y, "block"))
    boxes += [Box(f"dec{lv}", text, (2 * levels - lv) * step_x, -lv * step_y, "block")
              for lv, text in enumerate(decoders)]
    boxes.append(Box("head", head, (2 * levels + 1) * step_x, 0.0, "output"))
    down_targets = [f"enc{lv}" for lv in range(1, levels)] + ["bottom"]
    up_sources = [f"dec{lv}" for lv in range(1, levels)] + ["bottom"]
    arrows = [Arrow("stem", "enc0" if levels else "bottom")]
    arrows += [Arrow(f"enc{lv}", target, downs[lv]) for lv, target in enumerate(down_targets)]
    arrows += [Arrow(source, f"dec{lv}", ups[lv]) for lv, source in enumerate(up_sources)]
    arrows += [Arrow(f"enc{lv}", f"dec{lv}", "skip", dashed=True) for lv in range(levels)]
    arrows.append(Arrow("dec0" if levels else "bottom", "head"))
    return Panel(title, tuple(boxes), tuple(arrows))
