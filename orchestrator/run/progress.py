"""A status line per arm on the console instead of Tune's tables, plain-log friendly.

    [1:05] default: 2 running, 1 done, 0 failed; best val/psnr 23.41 dB (search); ~0:40 left

Lines come every `interval` seconds for the arms that reported since the last
lines, at once for an arm whose trial ended, and for every arm when the
experiment ends, each only when it changed; never a carriage return. The time
left is the arm's elapsed time scaled by its work still to do over its work
done (finished epochs, weighted by `ArmPlan.work`; a trial that ended counts
whole, a failed search its unit's retraining too).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

from ray.tune import Callback

from orchestrator.study import ArmPlan

INTERVAL_S = 15.0
PHASES = ("search", "retrain")


def clock_text(seconds: float) -> str:
    """`0:41`, `12:05`, `2:03:07`."""
    minutes, secs = divmod(int(round(seconds)), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


def epoch_work(plan: ArmPlan, phase: str) -> float:
    return plan.work(phase) / max(1, getattr(plan.study, phase).epochs)


def planned_work(plan: ArmPlan) -> float:
    """Every epoch the arm's units would run if none stopped early."""
    search = plan.work("search")
    retrain = plan.work("retrain") * len(plan.noises) if plan.retrain else 0.0
    return plan.units() * (search + retrain)


@dataclass
class ArmStatus:
    plan: ArmPlan
    started: float | None = None  # clock time of its first trial
    best: dict[str, float] = field(default_factory=dict)  # phase -> best val/psnr
    fresh: bool = False  # reported since its last line
    shown: str = ""  # its last line, without the clock
    ended: dict[str, str] = field(default_factory=dict)  # trial id -> TERMINATED | ERROR

    def status(self, trial) -> str:
        """Tune calls on_trial_complete before it marks the trial TERMINATED."""
        return self.ended.get(trial.trial_id, trial.status)

    def start(self, now: float) -> None:
        self.started = now if self.started is None else self.started

    def note(self, phase: str, result: dict, now: float) -> None:
        self.start(now)
        self.fresh = True
        psnr = result.get("val/psnr")
        if isinstance(psnr, (int, float)) and psnr > self.best.get(phase, float("-inf")):
            self.best[phase] = float(psnr)

    def work_done(self, trials: list) -> float:
        done = 0.0
        for trial in trials:
            phase = (trial.config or {}).get("phase", "search")
            status = self.status(trial)
            if status in ("TERMINATED", "ERROR"):
                done += self.plan.work(phase)
            if status == "ERROR" and phase == "search" and self.plan.retrain:
                done += self.plan.work("retrain") * len(self.plan.noises)  # never retrained
            else:
                epochs = (trial.last_result or {}).get("epoch", -1) + 1
                done += epochs * epoch_work(self.plan, phase)
        return done

    def line(self, trials: list, now: float) -> str:
        counts = {status: sum(self.status(t) == status for t in trials)
                  for status in ("RUNNING", "TERMINATED", "ERROR")}
        text = (f"{self.plan.name}: {counts['RUNNING']} running, "
                f"{counts['TERMINATED']} done, {counts['ERROR']} failed")
        phase = next((p for p in reversed(PHASES) if p in self.best), None)
        if phase is not None:
            text += f"; best val/psnr {self.best[phase]:.2f} dB ({phase})"
        done, total = self.work_done(trials), planned_work(self.plan)
        if self.started is not None and 0 < done < total:
            left = (now - self.started) * (total - done) / done
            text += f"; ~{clock_text(left)} left"
        return text


class ProgressLines(Callback):
    def __init__(self, plans: list[ArmPlan], interval: float = INTERVAL_S,
                 clock: Callable[[], float] = time.monotonic,
                 write: Callable[[str], None] | None = None):
        self.arms = {plan.name: ArmStatus(plan) for plan in plans}
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

    def show(self, names: list[str], trials: list) -> None:
        now = self.clock()
        for name in names:
            arm = self.arms[name]
            own = [t for t in trials if (t.config or {}).get("arm") == name]
            line = arm.line(own, now)
            if line != arm.shown:  # an arm with nothing new says nothing
                self.write(f"[{clock_text(now - self.since)}] {line}")
            arm.fresh, arm.shown = False, line
        self.last = now

    def on_trial_start(self, iteration, trials, trial, **info):
        arm = self.arm_of(trial)
        if arm is not None:
            arm.start(self.clock())

    def on_trial_result(self, iteration, trials, trial, result, **info):
        arm = self.arm_of(trial)
        if arm is not None:
            arm.note((trial.config or {}).get("phase", "search"), result, self.clock())

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
