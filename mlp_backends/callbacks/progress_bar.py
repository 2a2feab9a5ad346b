"""`ProgressBar`: a tqdm bar over the epochs on a terminal, one plain line per epoch otherwise."""

from __future__ import annotations

import sys

from .base import Callback


def _epoch_figures(logs: dict) -> str:
    text = f"loss {logs['loss']:.4f}  accuracy {logs['accuracy']:.4f}"
    if "val_loss" in logs:
        text += f"  val_loss {logs['val_loss']:.4f}  val_accuracy {logs['val_accuracy']:.4f}"
    return text


class ProgressBar(Callback):
    """A tqdm bar over the epochs on a terminal; one plain line per epoch otherwise."""

    def __init__(self, epochs: int, stream=None, tty: bool | None = None):
        self.epochs, self.stream = epochs, stream or sys.stdout
        tty = self.stream.isatty() if tty is None else tty
        self.bar = None
        if tty:
            try:
                from tqdm import tqdm
            except ImportError:  # plain lines are fine without the extra
                tqdm = None
            if tqdm is not None:
                self.bar = tqdm(total=epochs, unit="epoch", file=self.stream, dynamic_ncols=True, leave=True)

    def on_epoch_end(self, model, logs) -> bool:
        if self.bar is not None:
            figures = {"loss": f"{logs['loss']:.4f}", "accuracy": f"{logs['accuracy']:.4f}"}
            if "val_loss" in logs:
                figures.update(val_loss=f"{logs['val_loss']:.4f}", val_accuracy=f"{logs['val_accuracy']:.4f}")
            self.bar.set_postfix(figures, refresh=False)
            self.bar.update(1)
        else:
            print(f"epoch {logs['epoch']:>4}/{self.epochs}  {_epoch_figures(logs)}  "
                  f"({logs['time'] * 1000:.0f} ms)", file=self.stream, flush=True)
        return False

    def on_train_end(self, model, history) -> None:
        if self.bar is not None:
            self.bar.close()
