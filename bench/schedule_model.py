"""The arithmetic of the scheduling benchmark: a unit's known trial lengths, the ideal
makespan (the lower bound of any schedule) and a list-schedule simulation of the emission
policies, with an optional CPU cost per trial start shared on a machine's cores."""

from __future__ import annotations

import heapq
from collections.abc import Iterable
from dataclasses import dataclass


@dataclass(frozen=True)
class Unit:
    name: str  # the unit key the orchestrator tags runs with (arm/s<seed>)
    search_s: float
    retrain_s: tuple[float, ...]  # one per noise level

    @property
    def chain_s(self) -> float:
        return self.search_s + max(self.retrain_s, default=0.0)

    @property
    def work_s(self) -> float:
        return self.search_s + sum(self.retrain_s)


# --- the arithmetic -------------------------------------------------------------------------
def ideal_makespan(units: Iterable[Unit], slots: int) -> dict[str, float]:
    """The lower bound of any schedule: max(longest search + retrain chain, work / slots)."""
    units = list(units)
    total = sum(unit.work_s for unit in units)
    longest = max((unit.chain_s for unit in units), default=0.0)
    return {"ideal_s": max(longest, total / slots), "total_work_s": total,
            "longest_chain_s": longest}


POLICIES = ("searches_first", "retrains_first", "longest_chain")


def simulate(units: list[Unit], slots: int, policy: str = "searches_first",
             start_cpu_s: float = 0.0, cores: float | None = None) -> float:
    """Makespan of a list schedule of `units` on `slots` slots. Each trial first needs
    `start_cpu_s` of CPU (process start, imports, its MLflow run), shared equally by the trials
    starting at the same time on `cores` cores (None: each has a core), then sleeps its length.

    Policies: "searches_first", every search before any retrain (what Tune's FIFO queue does
    when trials in flight are not capped at the slots: every search is pending from the
    start, retrains join behind them), "retrains_first", "longest_chain" (the longest
    remaining chain first: the study searcher's policy, with trials capped at the slots).
    """
    if policy not in POLICIES:
        raise ValueError(f"unknown policy {policy!r} (one of {', '.join(POLICIES)})")
    ready: list[tuple[float, int, int, int]] = []  # (priority, order, unit, retrain index)
    order = 0

    def push(unit: int, retrain: int) -> None:
        nonlocal order
        search = retrain < 0
        if policy == "longest_chain":
            key = -(units[unit].chain_s if search else units[unit].retrain_s[retrain])
        else:  # 0 for the phase that goes first, FIFO within a phase
            key = float(search if policy == "retrains_first" else not search)
        heapq.heappush(ready, (key, order, unit, retrain))
        order += 1

    for index in range(len(units)):
        push(index, -1)
    running: list[list] = []  # [cpu left, sleep left, unit, retrain index]
    now = 0.0
    while ready or running:
        while ready and len(running) < slots:
            _, _, unit, retrain = heapq.heappop(ready)
            length = units[unit].search_s if retrain < 0 else units[unit].retrain_s[retrain]
            running.append([start_cpu_s, length, unit, retrain])
        starting = sum(1 for trial in running if trial[0] > 0)
        rate = min(1.0, cores / starting) if starting and cores else 1.0
        step = min(trial[0] / rate if trial[0] > 0 else trial[1] for trial in running)
        now += step
        for trial in running:
            if trial[0] > 0:
                trial[0] = trial[0] - rate * step if trial[0] - rate * step > 1e-9 else 0.0
            else:
                trial[1] -= step
        for trial in [trial for trial in running if trial[0] == 0 and trial[1] <= 1e-9]:
            running.remove(trial)
            if trial[3] < 0:
                for index in range(len(units[trial[2]].retrain_s)):
                    push(trial[2], index)
    return now
