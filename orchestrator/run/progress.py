"""A status line per arm on the console instead of Tune's tables, plain-log friendly.

    [1:05] default: 2 running, 1 done, 0 failed; best val/psnr 23.41 dB (search); ~0:40 left

Lines come every `interval` seconds for the arms that reported since the last
lines, at once for an arm whose trial ended, and for every arm when the
experiment ends, each only when it changed; never a carriage return. The time
left is the study's: the epochs still to run in every arm and phase times the seconds
an epoch of that arm and phase took so far (the trials' own `time/epoch_s`; a phase not
measured yet: its work (`ArmPlan.work`) at the rate measured for the arm's other phase,
else for the study), plus a trial's fixed cost for every trial not started, over the
trials that run at once. A trial that ended counts whole, a failed search its unit's
retraining too.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

from ray.tune import Callback

from orchestrator.study import ArmPlan

INTERVAL_S = 15.0
# a trial's fixed cost on 2 quiet CPU cores besides its epochs (start on a reused worker,
# MLflow run, cost metrics, plots): the quickstart's smoke trials ran 1 s longer than their
# timed steps; the cost estimate (orchestrator.run.estimate) counts it too
TRIAL_OVERHEAD_S = 1.0
PHASES = ("search", "retrain")


def clock_text(seconds: float) -> str:
    """`0:41`, `12:05`, `2:03:07`."""
    minutes, secs = divmod(int(round(seconds)), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


def epoch_work(plan: ArmPlan, phase: str) -> float:
    return plan.work(phase) / max(1, getattr(plan.study, phase).epochs)


@dataclass
class ArmStatus:
    plan: ArmPlan
    best: dict[str, float] = field(default_factory=dict)  # phase -> best val/psnr
    fresh: bool = False  # reported since its last line
    shown: str = ""  # its last line, without the clock
    ended: dict[str, str] = field(default_factory=dict)  # trial id -> TERMINATED | ERROR
    epoch_s: dict[str, list[float]] = field(default_factory=dict)  # phase -> measured epochs
    cached: dict[str, int] = field(default_factory=dict)  # phase -> units the cache gives

    def status(self, trial) -> str:
        """Tune calls on_trial_complete before it marks the trial TERMINATED."""
        return self.ended.get(trial.trial_id, trial.status)

    def note(self, phase: str, result: dict) -> None:
        self.fresh = True
        psnr = result.get("val/psnr")
        if isinstance(psnr, (int, float)) and psnr > self.best.get(phase, float("-inf")):
            self.best[phase] = float(psnr)
        seconds = result.get("time/epoch_s")
        if isinstance(seconds, (int, float)) and seconds > 0:
            self.epoch_s.setdefault(phase, []).append(float(seconds))

    def rate(self, phase: str) -> float | None:
        """Measured seconds per unit of work (`ArmPlan.work`) of the phase."""
        measured = self.epoch_s.get(phase)
        work = epoch_work(self.plan, phase)
        return sum(measured) / len(measured) / work if measured and work else None

    def left(self, trials: list) -> dict[str, tuple[float, int]]:
        """Per phase: (epochs still to run, trials not started yet)."""
        epochs = {phase: getattr(self.plan.study, phase).epochs for phase in PHASES}
        retrains = len(self.plan.noises) * len(self.plan.study.retrain.stages or [None])
        planned = {"search": self.plan.units() if self.plan.work("search") else 0,
                   "retrain": self.plan.units() * retrains if self.plan.retrain else 0}
        planned = {phase: max(0, count - self.cached.get(phase, 0))
                   for phase, count in planned.items()}
        seen, ran = {phase: 0 for phase in PHASES}, {phase: 0.0 for phase in PHASES}
        skipped = {phase: 0 for phase in PHASES}
        for trial in trials:
            phase = (trial.config or {}).get("phase", "search")
            seen[phase] += 1
            status = self.status(trial)
            if status in ("TERMINATED", "ERROR"):
                ran[phase] += epochs[phase]
                if status == "ERROR" and phase == "search" and self.plan.retrain:
                    skipped["retrain"] += retrains  # its unit is never retrained
            else:
                ran[phase] += (trial.last_result or {}).get("epoch", -1) + 1
        return {phase: (max(0.0, (planned[phase] - skipped[phase]) * epochs[phase] - ran[phase]),
                        max(0, planned[phase] - skipped[phase] - seen[phase]))
                for phase in PHASES}

    def seconds_left(self, trials: list, fallback: float | None) -> float | None:
        """Trial-seconds still to run; None when nothing of the arm is measured yet and the
        study has no `fallback` rate."""
        total = 0.0
        for phase, (epochs, unstarted) in self.left(trials).items():
            if not epochs:
                continue
            other = "retrain" if phase == "search" else "search"
            rate = self.rate(phase) or self.rate(other) or fallback
            if rate is None:
                return None
            total += epochs * epoch_work(self.plan, phase) * rate + unstarted * TRIAL_OVERHEAD_S
        return total

    def line(self, trials: list, left: float | None = None) -> str:
        counts = {status: sum(self.status(t) == status for t in trials)
                  for status in ("RUNNING", "TERMINATED", "ERROR")}
        text = (f"{self.plan.name}: {counts['RUNNING']} running, "
                f"{counts['TERMINATED']} done, {counts['ERROR']} failed")
        phase = next((p for p in reversed(PHASES) if p in self.best), None)
        if phase is not None:
            text += f"; best val/psnr {self.best[phase]:.2f} dB ({phase})"
        if left:
            text += f"; study ~{clock_text(left)} left"
        return text


class ProgressLines(Callback):
    def __init__(self, plans: list[ArmPlan], interval: float = INTERVAL_S,
                 clock: Callable[[], float] = time.monotonic,
                 write: Callable[[str], None] | None = None, slots: int = 1,
                 cached: dict[str, dict[str, int]] | None = None):
        """`cached`: arm -> {phase: units the result cache gives} (linked, never trials)."""
        self.arms = {plan.name: ArmStatus(plan, cached=dict((cached or {}).get(plan.name, {})))
                     for plan in plans}
        self.slots = max(1, slots)  # trials at once
        self.interval, self.clock = interval, clock
        self.write = write or (lambda text: print(text, flush=True))
        self.since = self.last = clock()

    def __getstate__(self) -> dict:  # Tune pickles its callbacks with the experiment state
        return {**self.__dict__, "write": None, "clock": None}

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)
        self.clock, self.write = time.monotonic, lambda text: print(text, flush=True)
        self.since = self.last = self.clock()

    def arm_of(self, trial) -> ArmStatus | None:
        return self.arms.get((trial.config or {}).get("arm"))

    def study_left(self, trials: list) -> float | None:
        """Seconds of wall time the study still needs, None before anything is measured."""
        rates = [rate for arm in self.arms.values() for phase in PHASES
                 if (rate := arm.rate(phase)) is not None]
        fallback = sum(rates) / len(rates) if rates else None
        total = 0.0
        for name, arm in self.arms.items():
            own = [t for t in trials if (t.config or {}).get("arm") == name]
            seconds = arm.seconds_left(own, fallback)
            if seconds is None:
                return None
            total += seconds
        return total / self.slots

    def show(self, names: list[str], trials: list) -> None:
        now = self.clock()
        left = self.study_left(trials) if names else None
        for name in names:
            arm = self.arms[name]
            own = [t for t in trials if (t.config or {}).get("arm") == name]
            line = arm.line(own, left)
            if line != arm.shown:  # an arm with nothing new says nothing
                self.write(f"[{clock_text(now - self.since)}] {line}")
            arm.fresh, arm.shown = False, line
        self.last = now

    def on_trial_result(self, iteration, trials, trial, result, **info):
        arm = self.arm_of(trial)
        if arm is not None:
            arm.note((trial.config or {}).get("phase", "search"), result)

    def on_step_end(self, iteration, trials, **info):
        if self.clock() - self.last >= self.interval:
            self.show([name for name, arm in self.arms.items() if arm.fresh], trials)

    def on_trial_complete(self, iteration, trials, trial, **info):
        self.ended(trial, trials, "TERMINATED")

    def on_trial_error(self, iteration, trials, trial, **info):
        self.write(f"{(trial.config or {}).get('unit', trial.trial_id)} "
                   f"{(trial.config or {}).get('phase', '')} FAILED (its MLflow run has the "
                   f"reason; Tune's log: {trial.path})")
        self.ended(trial, trials, "ERROR")

    def ended(self, trial, trials, status: str) -> None:
        arm = self.arm_of(trial)
        if arm is not None:
            arm.ended[trial.trial_id] = status
            self.show([arm.plan.name], trials)

    def on_experiment_end(self, trials, **info):
        self.show(list(self.arms), trials)
