"""Ctrl-C during training: the first one stops the loop after its current step (and
saves a checkpoint when there is one); a second one interrupts at once."""

from __future__ import annotations

import signal
import threading

from .checkpoint import Progress
from .errors import TrainingInterrupted


class StopOnSigint:
    """While active (main thread only), the first Ctrl-C asks the loop to stop after
    its current step; a second one interrupts at once, as usual."""

    def __init__(self):
        self.requested = False
        self._previous = None

    def __enter__(self):
        if threading.current_thread() is threading.main_thread():
            self._previous = signal.signal(signal.SIGINT, self._handle)
        return self

    def _handle(self, signum, frame):
        if self.requested:
            raise KeyboardInterrupt
        self.requested = True

    def __exit__(self, *exc):
        if self._previous is not None:
            signal.signal(signal.SIGINT, self._previous)


def interrupted(model, checkpoint, progress: Progress):
    """Ctrl-C: save `progress` (when there is a checkpoint) and raise TrainingInterrupted
    saying where training stopped and how to go on."""
    where = f"epoch {progress.epoch + 1}, after step {progress.step}"
    if checkpoint is None:
        raise TrainingInterrupted(f"interrupted in {where}; the model holds the parameters of that step "
                                  "(set a checkpoint folder to be able to resume)")
    checkpoint.save(model, progress)
    raise TrainingInterrupted(f"interrupted in {where}; checkpoint saved in {checkpoint.directory}; to continue, "
                              f"run the same command with --resume {checkpoint.directory} "
                              "(in Python: fit(..., checkpoint=that folder, resume=True))")
