"""Interrupted training loses nothing: SIGINT (Ctrl-C) and SIGTERM (how clusters pre-empt jobs)
ask the trainer to stop at the next step boundary, where it writes ``last.pt`` (atomically, the
exact step reached, mid-epoch) and raises :class:`TrainingInterrupted`; ``--resume`` then continues
bit-exactly. A second signal exits at once (status 128 + signal number), keeping the previous
checkpoint, which an atomic write never tears.

Usage::

    with GracefulStop() as stop:
        trainer = Trainer(config)
        trainer.fit(stop=stop)       # raises TrainingInterrupted after saving
"""

from __future__ import annotations

import os
import signal
import threading

from pcseg.errors import PcsegError

SIGNALS = (signal.SIGINT, signal.SIGTERM)


class TrainingInterrupted(PcsegError):
    """Training stopped on a signal after saving ``checkpoint`` (None when nothing had started).

    Attributes: ``signum`` (int), ``checkpoint`` (Path or None), ``epoch``, ``step``.
    """

    def __init__(self, signum: int, checkpoint=None, epoch: int = 0, step: int = 0):
        self.signum, self.checkpoint, self.epoch, self.step = signum, checkpoint, epoch, step
        name = signal.Signals(signum).name
        if checkpoint is None:
            text = f"interrupted by {name} before training started; nothing was saved"
        else:
            text = f"interrupted by {name} at step {step} (epoch {epoch + 1}); saved {checkpoint}"
        super().__init__(text)


class GracefulStop:
    """Context manager turning the first SIGINT/SIGTERM into a request (:attr:`requested`) and
    the second into an immediate exit. Installs nothing outside the main thread (signal handlers
    can only live there); then :attr:`requested` stays False and signals act as usual."""

    def __init__(self, notice: str = "pcseg train"):
        self.signum: int | None = None
        self.notice = notice
        self._previous: dict = {}

    @property
    def requested(self) -> bool:
        return self.signum is not None

    def __enter__(self) -> "GracefulStop":
        if threading.current_thread() is threading.main_thread():
            for sig in SIGNALS:
                self._previous[sig] = signal.signal(sig, self._handle)
        return self

    def __exit__(self, *exc) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)
        self._previous.clear()

    def _handle(self, signum, frame) -> None:
        # os.write, not print: a handler may run while print holds the stream's lock
        name = signal.Signals(signum).name
        if self.signum is not None:
            os.write(2, f"\n{self.notice}: second {name}: exiting now; the previous checkpoint is kept\n".encode())
            os._exit(128 + signum)
        self.signum = signum
        os.write(2, f"\n{self.notice}: {name}: saving a checkpoint at the end of this step "
                    f"(send it again to quit at once)\n".encode())


def ignore_in_workers() -> None:
    """For DataLoader workers: leave SIGINT/SIGTERM to the main process, which stops cleanly
    (a terminal's Ctrl-C reaches every process of the group; dying workers would fail the step)."""
    for sig in SIGNALS:
        signal.signal(sig, signal.SIG_IGN)
