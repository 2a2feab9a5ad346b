"""`JsonLog`: one JSON line per epoch in a file (`--log-json`), kept in step with checkpoints."""

from __future__ import annotations

import json
import os

from .base import Callback


class JsonLog(Callback):
    """--log-json: one JSON object per epoch, flushed as it happens (tail -f works).

    With append=True (a resumed run) the file is kept; the checkpoint's state cuts
    it back to the epochs the checkpoint holds, and the run appends from there."""

    state_key = "log_json"

    def __init__(self, path: str, append: bool = False):
        self.file = open(path, "a" if append else "w")

    def get_state(self, model) -> tuple[dict, list]:
        """The file's size now: what a checkpoint keeps, so a resumed run cuts the log back to it."""
        self.file.flush()
        return {"bytes": self.file.tell()}, []

    def set_state(self, model, state: dict, arrays: list) -> None:
        """Cut the file back to the size the checkpoint recorded."""
        size = os.fstat(self.file.fileno()).st_size
        if isinstance(state.get("bytes"), int) and 0 <= state["bytes"] <= size:
            self.file.truncate(state["bytes"])  # lines of epochs after the checkpoint are written again

    def on_epoch_end(self, model, logs) -> bool:
        from ..validation import jsonable

        # JSON has no NaN: a non-finite figure (a diverging validation loss) is written as null.
        self.file.write(json.dumps(jsonable(logs, None), allow_nan=False) + "\n")
        self.file.flush()
        return False

    def on_train_end(self, model, history) -> None:
        self.file.close()
