"""`EarlyStopping`: stop when a figure has stopped improving, and keep the best parameters."""

from __future__ import annotations

import math

import numpy as np

from ..errors import InputError
from ..validation import check_params
from .base import Callback


class EarlyStopping(Callback):
    """Stop when `monitor` has not improved by more than `min_delta` for
    `patience` epochs in a row, and give the model back its best parameters.

    monitor: "val_loss" (the default; it falls back to "loss" when fit has no
    validation data), "loss", "val_accuracy" or "accuracy". Losses must go
    down, accuracies up. The best parameters are copied when they appear
    (a backend's compiled step may update the live arrays in place).
    """

    def __init__(self, patience: int = 10, monitor: str = "val_loss", min_delta: float = 0.0,
                 restore_best: bool = True):
        patience, monitor, min_delta = check_params(patience=patience, monitor=monitor,
                                                    min_delta=min_delta).values()
        self.patience, self.monitor, self.min_delta, self.restore_best = patience, monitor, min_delta, restore_best
        self.on_train_begin(None)

    state_key = "early_stopping"
    state_required = True  # its stop decision and restored parameters depend on its state

    def _settings(self) -> list:
        return [self.patience, self.monitor, self.min_delta, self.restore_best]

    def get_state(self, model) -> tuple[dict, list]:
        """Everything it has seen (for checkpoints); the best parameters as host arrays."""
        state = {"settings": self._settings(), "best": self.best, "best_epoch": self.best_epoch,
                 "wait": self.wait, "monitored": self.monitored, "stop_reason": self.stop_reason,
                 "last_epoch": self.last_epoch, "required": True}
        best = [] if self.best_params is None else [np.array(model.backend.to_numpy(p)) for p in self.best_params]
        return state, best

    def set_state(self, model, state: dict, arrays: list) -> None:
        """Take back the state `get_state` saved, after checking the settings and the parameters' shapes match."""
        if list(state.get("settings", [])) != self._settings():
            raise InputError(f"the checkpointed run used early stopping with patience, monitor, min_delta, "
                             f"restore_best = {state.get('settings')} (now {self._settings()}); resume with the "
                             "same settings, or use a new checkpoint folder")
        if arrays and [a.shape for a in arrays] != [tuple(p.shape) for p in model.params]:
            raise InputError("the checkpoint's early-stopping parameters do not fit the model")
        self.best, self.best_epoch, self.wait = float(state["best"]), int(state["best_epoch"]), int(state["wait"])
        self.monitored, self.stop_reason = str(state["monitored"]), str(state["stop_reason"])
        self.last_epoch = int(state["last_epoch"])
        self.best_params = [model.backend.asarray(a, model.dtype) for a in arrays] or None

    def on_train_begin(self, model) -> None:
        self.best = math.inf
        self.best_epoch = 0
        self.best_params = None
        self.wait = 0
        self.monitored = self.monitor
        self.stop_reason = ""
        self.last_epoch = 0

    def on_epoch_end(self, model, logs) -> bool:
        key = self.monitor if self.monitor in logs else self.monitor.removeprefix("val_")
        self.monitored, self.last_epoch = key, logs["epoch"]
        sign = -1.0 if key.endswith("accuracy") else 1.0  # compare as "smaller is better"
        value = sign * logs[key]
        if value < self.best - self.min_delta:
            best = [model.backend.xp.asarray(p, copy=True) for p in model.params] if self.restore_best else None
            self.best, self.best_epoch, self.best_params, self.wait = value, logs["epoch"], best, 0
            return False
        self.wait += 1
        if self.wait < self.patience:
            return False
        self.stop_reason = (f"early stopping after epoch {logs['epoch']}: {key} has not improved for "
                            f"{self.patience} epochs; best {key} {sign * self.best:.4f} in epoch {self.best_epoch}")
        return True

    def on_train_end(self, model, history) -> None:
        if self.restore_best and self.best_params is not None and self.best_epoch < self.last_epoch:
            model.params = self.best_params
            if self.stop_reason:
                self.stop_reason += "; restored its parameters"
                history.stopped_early = self.stop_reason
