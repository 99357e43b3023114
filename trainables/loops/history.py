"""What a search keeps of every epoch for its pictures: the curves (train loss,
validation PSNR, the supernet's PSNR on `search.monitor`'s test sets) and the architecture
distributions as the space's labelled tables (`searchspaces.views`). It travels in the
checkpointed state as plain lists, strings and tensors (loadable with `weights_only=True`),
so a resumed trial still draws its whole history."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch

from searchspaces.views import WeightTable
from trainables.loops.monitor import is_monitor_psnr

CURVES = ("train/loss", "val/psnr")  # metrics drawn per epoch


@dataclass
class TableHistory:
    """One table of the space over the epochs: values[i] belongs to the i-th epoch recorded."""

    rows: list[str]
    columns: list[str]
    unit: str
    values: list[torch.Tensor] = field(default_factory=list)  # each (rows, columns)


@dataclass
class SearchHistory:
    epochs: list[int] = field(default_factory=list)
    curves: dict[str, list[float]] = field(default_factory=dict)  # metric -> one per epoch
    tables: dict[str, TableHistory] = field(default_factory=dict)  # by table name

    def record(self, epoch: int, metrics: dict[str, float], tables: list[WeightTable]) -> None:
        self.epochs.append(epoch)
        monitored = sorted(key for key in metrics if is_monitor_psnr(key))
        for key in dict.fromkeys([*CURVES, *self.curves, *monitored]):
            earlier = [float("nan")] * (len(self.epochs) - 1)  # a curve that starts late
            self.curves.setdefault(key, earlier).append(float(metrics.get(key, float("nan"))))
        for table in tables:
            kept = self.tables.setdefault(
                table.name, TableHistory(list(table.rows), list(table.columns), table.unit))
            kept.values.append(table.values.detach().float().cpu().clone())

    def to_state(self) -> dict[str, Any]:
        tables = {name: {"rows": t.rows, "columns": t.columns, "unit": t.unit,
                         "values": t.values} for name, t in self.tables.items()}
        return {"epochs": self.epochs, "curves": self.curves, "tables": tables}

    @classmethod
    def from_state(cls, state: dict[str, Any] | None) -> SearchHistory:
        """The history a checkpoint holds (empty for none, or one written before it existed)."""
        if not state:
            return cls()
        tables = {name: TableHistory(t["rows"], t["columns"], t["unit"], list(t["values"]))
                  for name, t in state["tables"].items()}
        curves = {key: list(values) for key, values in state["curves"].items()}
        return cls(list(state["epochs"]), curves, tables)
