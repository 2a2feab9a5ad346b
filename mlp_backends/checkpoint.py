"""Training checkpoints: everything needed to continue a run bit for bit.

A checkpoint holds the parameters, the optimizer state, the step counter, the
shuffle generator's state at the start of the current epoch, the position
inside that epoch and the sums accumulated so far, and the history. Resuming
replays the same shuffle order from the same position, so an interrupted and
resumed run ends with exactly the parameters of an uninterrupted one.

It is one `.npz` in the checkpoint folder, written atomically (io.atomic_savez):
a run killed while saving leaves the previous checkpoint intact.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .errors import InputError, ModelFileError
from .io import atomic_savez, read_npz
from .validation import check_param

FILE = "checkpoint.npz"
KIND = "mlp_backends.checkpoint"
VERSION = 1


@dataclass
class Progress:
    """Where a run stands: `epoch` epochs done, then `batch` batches into the next."""

    epoch: int = 0
    batch: int = 0
    step: int = 0
    rng_state: dict | None = None
    loss_sum: float = 0.0
    correct: float = 0.0
    history: dict[str, Any] = field(default_factory=dict)
    opt_state: Any = None


class Checkpoint:
    """A folder that receives a checkpoint every `every` epochs (and on Ctrl-C)."""

    def __init__(self, directory, every: int = 1, settings: dict | None = None):
        every = check_param("checkpoint_every", every)
        self.directory = Path(directory)
        self.every = every
        self.settings = settings or {}

    @property
    def path(self) -> Path:
        return self.directory / FILE

    def exists(self) -> bool:
        return self.path.is_file()

    def save(self, model, progress: Progress) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        arrays = {f"param{i}": p for i, p in enumerate(model.get_params())}
        for i, group in enumerate(progress.opt_state or ()):
            for j, array in enumerate(group):
                arrays[f"opt{i}_{j}"] = model.backend.to_numpy(array)
        meta = {
            "format": KIND, "format_version": VERSION,
            "config": model.config(), "settings": self.settings,
            "epoch": progress.epoch, "batch": progress.batch, "step": progress.step,
            "rng_state": progress.rng_state,
            "loss_sum": progress.loss_sum, "correct": progress.correct,
            "history": progress.history,
            "opt_groups": [len(g) for g in progress.opt_state or ()],
        }
        atomic_savez(self.path, arrays, meta)

    def load(self, model) -> Progress:
        """Put the checkpoint's parameters into `model`; return where to continue."""
        arrays, meta = read_npz(self.path, kind="checkpoint")
        if meta.get("format") != KIND or not isinstance(meta.get("format_version"), int):
            raise ModelFileError(f"{self.path} is not an mlp_backends checkpoint")
        if meta["format_version"] > VERSION:
            raise ModelFileError(f"{self.path} is from a newer mlp_backends; upgrade to resume it")
        for key, want in (("config", model.config()), ("settings", self.settings)):
            have = meta.get(key, {})
            diff = {k: (have.get(k), v) for k, v in want.items() if have.get(k) != v}
            if diff:
                listed = ", ".join(f"{k}={old!r} (now {new!r})" for k, (old, new) in diff.items())
                raise InputError(
                    f"checkpoint in {self.directory} was made with {listed}; resume with the same "
                    "settings, or use a new checkpoint folder"
                )
        try:
            model.set_params([arrays[f"param{i}"] for i in range(len(model.params))])
            opt_state = tuple(
                [model.backend.asarray(arrays[f"opt{i}_{j}"], model.dtype) for j in range(n)]
                for i, n in enumerate(meta["opt_groups"])
            )
            return Progress(meta["epoch"], meta["batch"], meta["step"], meta["rng_state"],
                            meta["loss_sum"], meta["correct"], meta["history"], opt_state)
        except (KeyError, TypeError, ValueError) as exc:
            raise ModelFileError(f"{self.path} is corrupt ({exc}); delete it to start over") from exc
