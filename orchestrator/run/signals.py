"""Stopping a study: Ctrl-C (SIGINT) and a process manager's SIGTERM do the same thing.

While Ray Tune runs the experiment, the first signal asks Tune to stop the way its own
Ctrl-C handling does (through SIGUSR1, which Tune always listens to: the experiment's
state is saved, the trials' last checkpoints are kept and their workers stopped);
`Tuner.fit` then returns and the runner marks the study's runs KILLED, so that
`--resume` continues exactly where it stopped. A second signal, or one outside the
experiment (while planning, or while the tables are written), raises KeyboardInterrupt
at once. Tune's own SIGINT handler is switched off (`TUNE_DISABLE_SIGINT_HANDLER`) so that
both signals take this one path and the runner knows that the study was stopped.
"""

from __future__ import annotations

import os
import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


class StudyStopped(Exception):
    """The study was stopped by a signal; its state is saved for `--resume`."""

    def __init__(self, study: str, signal_name: str):
        super().__init__(f"study {study} stopped by {signal_name}; its state is saved: run the "
                         "same command with --resume to continue")
        self.signal_name = signal_name


class StopSignals:
    """The signal handlers of one study run (the driver's main thread only)."""

    def __init__(self) -> None:
        self.received: str | None = None  # the first signal's name
        self.in_experiment = False  # inside `Tuner.fit`
        self.active = False  # the handlers are installed (main thread only)

    def handle(self, signum: int, frame) -> None:
        first = self.received is None
        if first:
            self.received = signal.Signals(signum).name
        if first and self.in_experiment and signal.getsignal(signal.SIGUSR1) is not waiting:
            signal.raise_signal(signal.SIGUSR1)  # Tune: stop, save state, return
            return
        raise KeyboardInterrupt  # outside Tune's loop (or before it listens): at once

    def install(self) -> None:
        """(Again) this object's handlers: `ray.init` puts Ray's own SIGTERM handler in the
        driver, which ends the process at once."""
        for number in STOP_SIGNALS:
            signal.signal(number, self.handle)
        self.active = True

    @contextmanager
    def experiment(self) -> Iterator[None]:
        """Around `Tuner.fit`: once Tune listens (its SIGUSR1 handler replaces `waiting`),
        the first signal stops it gracefully."""
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
    try:
        yield signals
    finally:
        for number, handler in previous.items():
            signal.signal(number, handler)
        if tune_handler is None:
            os.environ.pop("TUNE_DISABLE_SIGINT_HANDLER", None)
        else:
            os.environ["TUNE_DISABLE_SIGINT_HANDLER"] = tune_handler
