"""Callbacks: objects `fit` calls at the edges of training and of each epoch.

One per module: `History` (what every run records), `EarlyStopping`,
`ProgressBar` (the CLI's bar or lines) and `JsonLog` (the CLI's --log-json).
`Callback` (callbacks/base.py) states the hooks; the loops call them through
`begin_training`, `end_epoch` and `end_training`.
"""

from .base import Callback, begin_training, callback_states, end_epoch, end_training, restore_callbacks
from .early_stopping import EarlyStopping
from .history import History
from .json_log import JsonLog
from .progress_bar import ProgressBar

__all__ = ["Callback", "EarlyStopping", "History", "JsonLog", "ProgressBar", "begin_training", "callback_states",
           "end_epoch", "end_training", "restore_callbacks"]
