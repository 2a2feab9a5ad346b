"""The callback hooks, and how the training loops call them.

A callback is any object with `on_epoch_end(model, logs)`; `on_train_begin(model)`
and `on_train_end(model, history)` are called too when it has them. One that can
save its state for checkpoints has `state_key`, `get_state(model) -> (JSON-able
state, host arrays)` and `set_state(model, state, arrays)`. `Callback` states
these hooks once; the library's callbacks subclass it, a user's need not.
"""

from __future__ import annotations

from typing import Any

from ..errors import InputError
from .history import History


class Callback:
    """The hooks `fit` calls on a callback; each does nothing here."""

    def on_train_begin(self, model) -> None:
        """Called once before the first epoch (also when a run resumes)."""

    def on_epoch_end(self, model, logs: dict[str, Any]) -> bool | None:
        """Called once per epoch with its figures; return True to stop training.

        logs holds epoch, loss, accuracy, time, and val_loss, val_accuracy
        when fit was given validation data. A callback that stops may set
        `stop_reason` (a sentence) for `History.stopped_early`.
        """

    def on_train_end(self, model, history: History) -> None:
        """Called once after the last epoch, with the run's History."""


# -- the epoch's edges, shared with the distributed loop ---------------------------
def begin_training(model, callbacks) -> None:
    """Call `on_train_begin(model)` on every callback that has it."""
    for callback in callbacks:
        if hasattr(callback, "on_train_begin"):
            callback.on_train_begin(model)


def callback_states(model, callbacks) -> dict:
    """state_key -> (JSON-able state, host arrays) of each callback that can save its state
    (`state_key`, `get_state(model)`, `set_state(model, state, arrays)`): what a checkpoint
    keeps so that a resumed run's callbacks go on exactly where they were."""
    return {c.state_key: c.get_state(model) for c in callbacks if hasattr(c, "get_state")}


def restore_callbacks(model, callbacks, saved: dict) -> None:
    """Give each callback its checkpointed state. A state marked "required" (early stopping:
    its decisions depend on it) must find its callback, and the callback its state."""
    present = {c.state_key for c in callbacks if hasattr(c, "set_state")}
    for key, (state, _) in saved.items():
        if state.get("required") and key not in present:
            raise InputError(f"the checkpointed run used {key.replace('_', ' ')}; resume with the same options "
                             "(the run cannot continue bit for bit without it), or use a new checkpoint folder")
    for c in callbacks:
        if not hasattr(c, "set_state"):
            continue
        if c.state_key in saved:
            c.set_state(model, *saved[c.state_key])
        elif getattr(c, "state_required", False):
            raise InputError(f"the checkpointed run had no {c.state_key.replace('_', ' ')}; resume with the same "
                             "options, or use a new checkpoint folder")


def end_epoch(model, logs: dict, callbacks, history: History) -> bool:
    """Hand the epoch's figures to every callback and record them; True to stop."""
    stop = False
    for callback in callbacks:
        stop = bool(callback.on_epoch_end(model, logs)) or stop
    history.append(logs)
    if stop:
        reasons = [getattr(c, "stop_reason", "") for c in callbacks]
        history.stopped_early = (" ".join(r for r in reasons if r)
                                 or f"a callback stopped training after epoch {logs['epoch']}")
    return stop


def end_training(model, callbacks, history: History) -> None:
    """Call `on_train_end(model, history)` on every callback that has it."""
    for callback in callbacks:
        if hasattr(callback, "on_train_end"):
            callback.on_train_end(model, history)
