"""Stopping a study: Ctrl-C (SIGINT), a process manager's SIGTERM and a trial that found the
disk full all stop it the same way, with its state saved for `--resume`.

While Ray Tune runs the experiment, the first stop asks Tune to stop the way its own
Ctrl-C handling does (through SIGUSR1, which Tune always listens to: the experiment's
state is saved, the trials' last checkpoints are kept and their workers stopped);
`Tuner.fit` then returns and the runner marks the study's runs KILLED, so that
`--resume` continues from the last checkpoints. A second signal, or one outside the
experiment (while planning, or while the tables are written), raises KeyboardInterrupt
at once. Tune's own SIGINT handler is switched off (`TUNE_DISABLE_SIGINT_HANDLER`) so that
every stop takes this one path and the runner knows why the study stopped.

A trial that cannot write for lack of space (`trainables.tune` reports `NO_SPACE` with the
path and the free space instead of failing) asks for the same stop through `NoSpaceStop`.
"""

from __future__ import annotations

import os
import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from ray.tune import Callback

from trainables.tune import NO_SPACE

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)
ACTIVE: list[StopSignals] = []  # the study run's handlers (callbacks are pickled copies)


@dataclass(frozen=True)
class Stop:
    why: str  # "SIGTERM", or a trial's reason
    exit_code: int


class StudyStopped(Exception):
    """The study was stopped; its state is saved for `--resume`."""

    def __init__(self, study: str, stop: Stop):
        signalled = stop.why.startswith("SIG")
        cause = f"by {stop.why}" if signalled else f"({stop.why})"
        then = "" if signalled else "free space, then "
        super().__init__(f"study {study} stopped {cause}; its state is saved: {then}run the "
                         "same command with --resume to continue")
        self.exit_code = stop.exit_code


class StopSignals:
    """The stop handlers of one study run (signals: the driver's main thread only)."""

    def __init__(self) -> None:
        self.received: Stop | None = None  # the first stop
        self.in_experiment = False  # inside `Tuner.fit`
        self.active = False  # the handlers are installed (main thread only)

    def handle(self, signum: int, frame) -> None:
        name = signal.Signals(signum).name
        if not self.request(Stop(name, 128 + signum)):
            raise KeyboardInterrupt  # a second signal, or outside Tune's loop: at once

    def request(self, stop: Stop) -> bool:
        """Ask Tune to stop; False when this is not the first stop or Tune is not listening
        (before its loop, or after it)."""
        first = self.received is None
        if first:
            self.received = stop
        if first and self.in_experiment and signal.getsignal(signal.SIGUSR1) is not waiting:
            signal.raise_signal(signal.SIGUSR1)  # Tune: stop, save state, return
            return True
        return False

    def install(self) -> None:
        """(Again) this object's handlers: `ray.init` puts Ray's own SIGTERM handler in the
        driver, which ends the process at once."""
        for number in STOP_SIGNALS:
            signal.signal(number, self.handle)
        self.active = True

    @contextmanager
    def experiment(self) -> Iterator[None]:
        """Around `Tuner.fit`: once Tune listens (its SIGUSR1 handler replaces `waiting`),
        the first stop ends it gracefully."""
        if not self.active:
            yield
            return
        if self.received is not None:
            raise KeyboardInterrupt
        previous = signal.getsignal(signal.SIGUSR1)
        signal.signal(signal.SIGUSR1, waiting)
        self.in_experiment = True
        try:
            yield
        finally:
            self.in_experiment = False
            signal.signal(signal.SIGUSR1, previous)


def waiting(signum: int, frame) -> None:
    """SIGUSR1 before Tune listens: nothing (its default would end the process)."""


class NoSpaceStop(Callback):
    """A trial reported that the disk is full: stop the study (the trial waits, keeping its
    previous checkpoint, and continues from it on `--resume`)."""

    def on_trial_result(self, iteration, trials, trial, result, **info):
        if NO_SPACE in result and ACTIVE:
            ACTIVE[-1].request(Stop(f"{trial.trial_id}: {result[NO_SPACE]}", 1))


@contextmanager
def stop_signals() -> Iterator[StopSignals]:
    """SIGINT and SIGTERM handled by one `StopSignals` for the duration (in the main thread;
    elsewhere, as Python and Tune handle them by default)."""
    signals = StopSignals()
    if threading.current_thread() is not threading.main_thread():
        yield signals
        return
    previous = {number: signal.getsignal(number) for number in STOP_SIGNALS}
    tune_handler = os.environ.get("TUNE_DISABLE_SIGINT_HANDLER")
    os.environ["TUNE_DISABLE_SIGINT_HANDLER"] = "1"
    signals.install()
    ACTIVE.append(signals)
    try:
        yield signals
    finally:
        ACTIVE.remove(signals)
        for number, handler in previous.items():
            signal.signal(number, handler)
        if tune_handler is None:
            os.environ.pop("TUNE_DISABLE_SIGINT_HANDLER", None)
        else:
            os.environ["TUNE_DISABLE_SIGINT_HANDLER"] = tune_handler
