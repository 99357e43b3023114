"""A status line per arm on the console instead of Tune's tables, plain-log friendly.

    [1:05] default: 2 running, 1 done, 0 failed; best val/psnr 23.41 dB (search); ~0:40 left

Lines come every `interval` seconds for the arms that reported since the last
lines, at once for an arm whose trial ended, and for every arm when the
experiment ends, each only when it changed; never a carriage return.

The time left is the study's, in the cost model of the dry-run (`orchestrator.run.estimate`):
per arm and phase, the work still to run (steps x batch x patch pixels, `ArmPlan.work`;
with `retrain.proxy` every candidate's short retraining and the `keep` full ones) times the
seconds a unit of it took so far (each trial's `time/epoch_s` over that trial's own epoch
of work; a phase not measured yet: the arm's other phase, else the study's rate), plus each
trial's fixed part (start, test sets and self-ensemble, cost metrics, plots: measured as a
finished trial's wall time beyond its epochs, `TRIAL_OVERHEAD_S` until one has finished),
over the trials that run at once. A trial that ended counts whole, a failed search its
unit's retraining too.
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


def trial_work(plan: ArmPlan, phase: str, short: bool = False) -> float:
    """Work of one trial of the phase (`short`: a proxy retraining)."""
    if short and plan.study.retrain.proxy is not None:
        return float(plan.study.retrain.proxy.steps * plan.study.retrain.batch_size *
                     plan.study.data.patch_size**2)
    return plan.work(phase)


def config_work(plan: ArmPlan, config: dict) -> tuple[float, int]:
    """(work, epochs) of the trial `config` runs."""
    phase = config.get("phase", "search")
    short = (config.get("labels") or {}).get("proxy") == "short"
    epochs = 1 if short else getattr(plan.study, phase).epochs
    return trial_work(plan, phase, short), max(1, epochs)


@dataclass
class ArmStatus:
    plan: ArmPlan
    best: dict[str, float] = field(default_factory=dict)  # phase -> best val/psnr
    fresh: bool = False  # reported since its last line
    shown: str = ""  # its last line, without the clock
    ended: dict[str, str] = field(default_factory=dict)  # trial id -> TERMINATED | ERROR
    rates: dict[str, list[float]] = field(default_factory=dict)  # phase -> s per unit of work
    epochs_s: dict[str, float] = field(default_factory=dict)  # trial id -> its epochs' seconds
    started: dict[str, float] = field(default_factory=dict)  # trial id -> clock at its start
    fixed_s: dict[str, list[float]] = field(default_factory=dict)  # phase -> s beyond epochs
    cached: dict[str, int] = field(default_factory=dict)  # phase -> units the cache gives

    def status(self, trial) -> str:
        """Tune calls on_trial_complete before it marks the trial TERMINATED."""
        return self.ended.get(trial.trial_id, trial.status)

    def note(self, trial, result: dict) -> None:
        self.fresh = True
        config = trial.config or {}
        phase = config.get("phase", "search")
        psnr = result.get("val/psnr")
        if isinstance(psnr, (int, float)) and psnr > self.best.get(phase, float("-inf")):
            self.best[phase] = float(psnr)
        seconds = result.get("time/epoch_s")
        work, epochs = config_work(self.plan, config)
        if isinstance(seconds, (int, float)) and seconds > 0 and work:
            self.rates.setdefault(phase, []).append(float(seconds) * epochs / work)
            self.epochs_s[trial.trial_id] = self.epochs_s.get(trial.trial_id, 0.0) + seconds

    def finished(self, trial, now: float) -> None:
        """A trial ended well: its wall time beyond its epochs is the phase's fixed part."""
        began = self.started.get(trial.trial_id)
        if began is not None and trial.trial_id in self.epochs_s:
            phase = (trial.config or {}).get("phase", "search")
            self.fixed_s.setdefault(phase, []).append(
                max(0.0, now - began - self.epochs_s[trial.trial_id]))

    def rate(self, phase: str) -> float | None:
        """Measured seconds per unit of work (`ArmPlan.work`) of the phase."""
        measured = self.rates.get(phase)
        return sum(measured) / len(measured) if measured else None

    def fixed(self, phase: str) -> float:
        measured = self.fixed_s.get(phase)
        return sum(measured) / len(measured) if measured else TRIAL_OVERHEAD_S

    def per_unit(self) -> int:
        """Retrain trials of one unit (noise levels x stage counts)."""
        plan = self.plan
        return len(plan.noises) * len(plan.study.retrain.stages or [None]) if plan.retrain else 0

    def planned(self) -> dict[str, list[tuple[float, int]]]:
        """Per phase: [(work of one trial, trials)] the plan owes, less what the cache gives
        (whole trials, the shortest first)."""
        plan, units, per_unit = self.plan, self.plan.units(), self.per_unit()
        planned = {"search": [(plan.work("search"), units)] if plan.work("search") else [],
                   "retrain": [(plan.work("retrain"), units * per_unit)]}
        if plan.tuned and plan.study.retrain.proxy is not None:
            planned["retrain"] = [(trial_work(plan, "retrain", short=True), units * per_unit),
                                  (plan.work("retrain"),
                                   min(plan.study.retrain.proxy.keep, units) * per_unit)]
        for phase, parts in planned.items():
            given = self.cached.get(phase, 0)
            for index in sorted(range(len(parts)), key=lambda i: parts[i][0]):
                work, count = parts[index]
                parts[index], given = (work, count - min(given, count)), given - min(given,
                                                                                     count)
        return planned

    def left(self, trials: list) -> dict[str, tuple[float, int]]:
        """Per phase: (work still to run, trials not started yet)."""
        planned = self.planned()
        work = {phase: sum(w * n for w, n in parts) for phase, parts in planned.items()}
        count = {phase: sum(n for _, n in parts) for phase, parts in planned.items()}
        for trial in trials:
            config = trial.config or {}
            phase = config.get("phase", "search")
            size, epochs = config_work(self.plan, config)
            count[phase] -= 1
            status = self.status(trial)
            if status in ("TERMINATED", "ERROR"):
                work[phase] -= size
                if status == "ERROR" and phase == "search" and planned["retrain"]:
                    # its unit's (first-stage) retrainings never run
                    work["retrain"] -= planned["retrain"][0][0] * self.per_unit()
                    count["retrain"] -= self.per_unit()
            else:
                done = (trial.last_result or {}).get("epoch", -1) + 1
                work[phase] -= size * min(done, epochs) / epochs
        return {phase: (max(0.0, work[phase]), max(0, count[phase])) for phase in PHASES}

    def seconds_left(self, trials: list, fallback: float | None) -> float | None:
        """Trial-seconds still to run; None when nothing of the arm is measured yet and the
        study has no `fallback` rate."""
        total = 0.0
        running = {phase: sum(self.status(t) not in ("TERMINATED", "ERROR") for t in trials
                              if (t.config or {}).get("phase", "search") == phase)
                   for phase in PHASES}
        for phase, (work, unstarted) in self.left(trials).items():
            if not work:
                continue
            other = "retrain" if phase == "search" else "search"
            rate = self.rate(phase) or self.rate(other) or fallback
            if rate is None:
                return None
            total += work * rate + (unstarted + running[phase]) * self.fixed(phase)
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
        for arm in self.arms.values():  # another process's clock
            arm.started.clear()

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

    def on_trial_start(self, iteration, trials, trial, **info):
        arm = self.arm_of(trial)
        if arm is not None:
            arm.started.setdefault(trial.trial_id, self.clock())

    def on_trial_result(self, iteration, trials, trial, result, **info):
        arm = self.arm_of(trial)
        if arm is not None:
            arm.note(trial, result)

    def on_step_end(self, iteration, trials, **info):
        if self.clock() - self.last >= self.interval:
            self.show([name for name, arm in self.arms.items() if arm.fresh], trials)

    def on_trial_complete(self, iteration, trials, trial, **info):
        arm = self.arm_of(trial)
        if arm is not None:
            arm.finished(trial, self.clock())
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
