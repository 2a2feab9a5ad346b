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

import contextlib
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .errors import InputError, ModelFileError, one_line
from .io import atomic_savez, check_format, corrupt_if_invalid, read_saved_npz, try_lock
from .validation import Whole, check_arrays, check_param, layer_shapes

FILE = "checkpoint.npz"
LOCK = ".lock"  # held (flock) by the process writing checkpoints here
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
    callbacks: dict[str, Any] = field(default_factory=dict)  # state_key -> (state, host arrays)


class Checkpoint:
    """A folder that receives a checkpoint every `every` epochs (and on Ctrl-C)."""

    def __init__(self, directory, every: int = 1, settings: dict | None = None):
        every = check_param("checkpoint_every", every)
        self.directory = Path(directory)
        self.every = every
        self.settings = settings or {}

    @property
    def path(self) -> Path:
        """The checkpoint file inside the folder."""
        return self.directory / FILE

    def exists(self) -> bool:
        """Whether the folder already holds a checkpoint."""
        return self.path.is_file()

    def refuse_another_run(self, resume: bool) -> None:
        """A checkpoint already here belongs to a run: only resuming may write over it."""
        if self.exists() and not resume:
            raise InputError(
                f"{self.directory} already holds a checkpoint of an earlier run; to continue it, resume "
                f"(--resume {self.directory}, or resume=True in Python); to start over, delete {self.path} "
                "or choose another folder")

    @contextlib.contextmanager
    def writing(self, resume: bool):
        """Hold the folder for this run: refuse another run's checkpoint (unless resuming),
        and a second process writing here at the same time (an advisory lock on a `.lock`
        file in the folder, released when the run ends or its process dies)."""
        self.refuse_another_run(resume)
        self.directory.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.directory / LOCK, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            if not try_lock(fd):
                raise InputError(f"another process is training with checkpoints in {self.directory} right now; "
                                 "wait for it to finish, or choose another folder")
            yield self
        finally:
            os.close(fd)

    def save(self, model, progress: Progress) -> None:
        """Write the model's parameters and the run's `progress` in one atomic replace: a crash
        mid-write leaves the previous checkpoint whole."""
        self.directory.mkdir(parents=True, exist_ok=True)
        arrays = {f"param{i}": p for i, p in enumerate(model.get_params())}
        for i, group in enumerate(progress.opt_state or ()):
            for j, array in enumerate(group):
                arrays[f"opt{i}_{j}"] = model.backend.to_numpy(array)
        for key, (_state, extra) in progress.callbacks.items():
            arrays.update({f"cb_{key}_{j}": a for j, a in enumerate(extra)})
        meta = {
            "format": KIND, "format_version": VERSION,
            "config": model.config(), "settings": self.settings,
            "epoch": progress.epoch, "batch": progress.batch, "step": progress.step,
            "rng_state": progress.rng_state,
            "loss_sum": progress.loss_sum, "correct": progress.correct,
            "history": progress.history,
            "opt_groups": [len(g) for g in progress.opt_state or ()],
            "callbacks": {key: {"state": state, "arrays": len(extra)}
                          for key, (state, extra) in progress.callbacks.items()},
        }
        atomic_savez(self.path, arrays, meta)

    def load(self, model) -> Progress:
        """Put the checkpoint's parameters into `model`; return where to continue.

        Every field is checked against `model` before anything is read from the
        arrays: a damaged or foreign checkpoint is a `ModelFileError`, one made
        with other settings an `InputError` that lists them."""
        found = {}

        def check(meta, contents):
            check_format(meta, self.path, "checkpoint", KIND, VERSION)
            for key, want in (("config", model.config()), ("settings", self.settings)):
                have = meta.get(key)
                if not isinstance(have, dict):
                    raise ModelFileError(f"{self.path} is corrupt: {key} is not a mapping; delete it to start over")
                diff = {k: (have.get(k), v) for k, v in want.items() if have.get(k) != v}
                if "data" in diff:
                    raise InputError(
                        f"the data differ from those the checkpoint in {self.directory} was made with (fingerprint "
                        f"{diff['data'][0]}, now {diff['data'][1]}); resume with the same data and split options, "
                        "or use a new checkpoint folder")
                if diff:
                    listed = ", ".join(f"{k}={old!r} (now {new!r})" for k, (old, new) in diff.items())
                    raise InputError(
                        f"checkpoint in {self.directory} was made with {listed}; resume with the same "
                        "settings, or use a new checkpoint folder"
                    )
            with corrupt_if_invalid(self.path):
                found["progress"] = _progress(meta, contents, model)

        arrays, meta = read_saved_npz(self.path, "checkpoint", check)
        progress = found["progress"]
        model.set_params([arrays[f"param{i}"] for i in range(len(model.params))])
        progress.opt_state = tuple(
            [model.backend.asarray(arrays[f"opt{i}_{j}"], model.dtype) for j in range(n)]
            for i, n in enumerate(meta["opt_groups"]))
        progress.callbacks = {key: (entry["state"], [arrays[f"cb_{key}_{j}"] for j in range(entry["arrays"])])
                              for key, entry in meta.get("callbacks", {}).items()}
        return progress


HISTORY_LISTS = ("loss", "accuracy", "time")


def _number(name: str, value) -> float:
    """A float as `atomic_savez` writes it: a number, or "nan", "inf", "-inf"."""
    if isinstance(value, str) and value in ("nan", "inf", "-inf"):
        return float(value)
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise InputError(f"{name} must be a number, got {str(value)[:40]!r}")
    return float(value)


def _progress(meta: dict, contents: dict, model) -> Progress:
    """Where the checkpoint stands, every field checked; raises InputError on the first bad one."""
    whole = Whole(0)
    epoch, batch, step = (check_param(k, meta.get(k), whole) for k in ("epoch", "batch", "step"))
    rng_state = meta.get("rng_state")
    if rng_state is not None and not isinstance(rng_state, dict):
        raise InputError(f"rng_state is not a mapping ({str(rng_state)[:40]})")
    if rng_state is not None and "bit_generator" in rng_state:  # a NumPy generator's (a cluster saves a seed)
        try:  # the generator itself is the judge of its state
            np.random.default_rng().bit_generator.state = rng_state
        except (TypeError, ValueError, KeyError) as exc:
            raise InputError(f"rng_state is not a generator state ({one_line(exc)})") from exc
    history = meta.get("history")
    if not isinstance(history, dict) or not set(history) <= {*HISTORY_LISTS, "extra", "stopped_early", "threads"}:
        raise InputError(f"history is not a training history ({str(history)[:40]})")
    lists = [*(history.get(k, []) for k in HISTORY_LISTS), *dict(history.get("extra") or {}).values()]
    for values in lists:
        if not isinstance(values, list):
            raise InputError("history holds a value that is not a list")
        for v in values:
            _number("history value", v)
    if not all(isinstance(history.get(k, d), type(d)) for k, d in (("stopped_early", ""), ("extra", {}),
                                                                    ("threads", {}))):
        raise InputError("history is not a training history")
    shapes = layer_shapes(model.sizes)
    groups = meta.get("opt_groups")
    if not isinstance(groups, list) or any(g != len(shapes) for g in groups) or len(groups) > 4:
        raise InputError(f"opt_groups {str(groups)[:40]} does not fit {len(shapes)} parameter arrays")
    wanted = {f"param{i}": s for i, s in enumerate(shapes)}
    wanted.update({f"opt{i}_{j}": s for i in range(len(groups)) for j, s in enumerate(shapes)})
    callbacks = meta.get("callbacks", {})
    if not isinstance(callbacks, dict) or not all(
            isinstance(e, dict) and isinstance(e.get("state"), dict) and isinstance(e.get("arrays"), int)
            for e in callbacks.values()):
        raise InputError("callbacks is not a mapping of callback states")
    for key, entry in callbacks.items():
        for j in range(entry["arrays"]):
            if f"cb_{key}_{j}" not in contents:
                raise InputError(f"array 'cb_{key}_{j}' of the {key} callback is missing")
    check_arrays(contents, wanted)
    return Progress(epoch, batch, step, rng_state, _number("loss_sum", meta.get("loss_sum")),
                    _number("correct", meta.get("correct")), history)
