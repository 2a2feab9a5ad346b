"""Training curves as a PNG: loss and accuracy per epoch, train and validation.

matplotlib is an optional extra (`pip install 'mlp-backends[plot]'`); it is
imported only here, only when asked, with the file-only Agg renderer so that
no display is needed.
"""

from __future__ import annotations

from pathlib import Path

from .errors import InputError
from .io import atomic_write

INSTALL_HINT = "pip install 'mlp-backends[plot]' (or pip install matplotlib)"


def require_matplotlib():
    """The pyplot module, or an InputError saying how to install it."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError as exc:
        raise InputError(f"plotting needs matplotlib, which is not installed; {INSTALL_HINT}") from exc
    return plt


def plot_history(history, path, title: str = "", kept_epoch: int | None = None) -> Path:
    """Write loss and accuracy curves of a `History` to a PNG at `path` (atomically).

    kept_epoch marks the epoch whose parameters the model kept (early stopping).
    """
    plt = require_matplotlib()
    path = Path(path)
    if not path.parent.is_dir():
        raise InputError(f"cannot write {path}: folder {path.parent} does not exist; create it first")
    epochs = list(range(1, len(history) + 1))
    marker = "." if len(epochs) <= 50 else None  # dots on long runs only blur the line
    fig, (ax_loss, ax_acc) = plt.subplots(1, 2, figsize=(10, 4), constrained_layout=True)
    for ax, key, label in ((ax_loss, "loss", "loss (cross-entropy)"), (ax_acc, "accuracy", "accuracy")):
        ax.plot(epochs, history[key], marker=marker, label=f"train {key}")
        if f"val_{key}" in history.extra:
            ax.plot(epochs, history[f"val_{key}"], marker=marker, label=f"validation {key}")
        if kept_epoch:
            ax.axvline(kept_epoch, color="grey", linestyle="--", label=f"kept (epoch {kept_epoch})")
        ax.set_xlabel("epoch")
        ax.set_ylabel(label)
        ax.grid(alpha=0.3)
        ax.legend()
    ax_loss.set_yscale("log")  # losses fall over orders of magnitude
    if title:
        fig.suptitle(title)
    try:
        atomic_write(path, lambda f: fig.savefig(f, format="png", dpi=100))
    finally:
        plt.close(fig)
    return path
