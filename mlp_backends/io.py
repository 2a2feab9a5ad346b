"""Model files: one portable `.npz` (arrays W1, b1, ... plus JSON metadata), no pickle.

Saved from any backend, loaded on any backend. Writes go to a temporary file
in the same folder and are renamed into place, so an interrupted save never
leaves a broken model behind. Loading a truncated, corrupt, foreign or
newer-format file raises `ModelFileError` saying which. Files are untrusted:
sizes, shapes and types are checked from the headers before anything is
allocated from them, and nothing in them is unpickled.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
import zipfile
from pathlib import Path
from typing import Any

import numpy as np

try:
    import fcntl
except ImportError:  # Windows: no advisory locks; writes stay atomic, stale temporaries stay
    fcntl = None

from .errors import InputError, ModelFileError, UsageError, one_line
from .validation import check_arrays, check_config, check_extra, jsonable, layer_shapes, npz_contents

FORMAT = "mlp_backends.model"
FORMAT_VERSION = 1
META_KEY = "__meta__"
MAX_META_BYTES = 64 << 20  # far above any real metadata; a bigger one is not ours


def _default_mode() -> int:
    """What the umask gives a new file (mkstemp's own 0600 would hide it from others)."""
    mask = os.umask(0)
    os.umask(mask)
    return 0o666 & ~mask


def try_lock(fd: int) -> bool:
    """An exclusive, non-blocking lock on an open file; False if another process holds one.
    (Without fcntl, as on Windows, it always succeeds: no cleanup of others' files there.)"""
    if fcntl is None:
        return True
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        return True
    except OSError:
        return False


def remove_stale_temporaries(path) -> list[Path]:
    """Delete the temporary files that killed writes of `path` left in its folder.

    A writer holds a lock on its temporary file for as long as it writes, so a
    temporary that can be locked belongs to a process that is gone."""
    path = Path(path)
    removed = []
    if fcntl is None:
        return removed
    for tmp in path.parent.glob(f".{path.name}.*.tmp"):
        try:
            fd = os.open(tmp, os.O_RDONLY)
        except OSError:
            continue
        try:
            if try_lock(fd):
                tmp.unlink(missing_ok=True)
                removed.append(tmp)
        finally:
            os.close(fd)
    return removed


def atomic_write(path, write, mode: str = "wb") -> None:
    """Call write(file) on a temporary file next to `path`, then rename it into place,
    so that `path` is either the whole new file or untouched (even after ^C or SIGKILL).

    Temporaries of earlier writes that were killed are removed first."""
    path = Path(path)
    if path.parent and not path.parent.is_dir():
        raise ModelFileError(f"cannot save to {path}: folder {path.parent} does not exist; create it first")
    remove_stale_temporaries(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent or ".")
    try:
        try_lock(fd)  # released when the file is closed, or the process dies
        with os.fdopen(fd, mode, **({} if "b" in mode else {"newline": ""})) as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
            os.chmod(tmp, _default_mode())
            os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _same(a: Path, b: Path) -> bool:
    try:
        return a == b or (a.exists() and b.exists() and os.path.samefile(a, b))
    except OSError:
        return False


def check_outputs(outputs: dict[str, str | None], inputs: dict[str, str | None] | None = None,
                  new_folders: tuple = ()) -> None:
    """Before any work: each output (label -> path; None is skipped) can be written, and none
    is an input or another output (labels, e.g. "--save", name them in the message).
    Outputs labelled in `new_folders` may be in a folder that is created later.

    Writability is tried, not guessed: a temporary file is created and removed in each
    output's folder, which also catches read-only file systems."""
    outs = {k: Path(v).expanduser().resolve() for k, v in outputs.items() if v}
    ins = {k: Path(v).expanduser().resolve() for k, v in (inputs or {}).items()
           if v and Path(v).expanduser().exists()}
    labels = list(outs)
    for i, a in enumerate(labels):
        for b in labels[i + 1:]:
            if _same(outs[a], outs[b]):
                raise InputError(f"{a} and {b} both name {outs[a]}; give each output its own file")
        for b, src in ins.items():
            if _same(outs[a], src):
                raise InputError(f"{a} {outs[a]} is also the {b} being read; writing it would destroy it: "
                                 "choose another file name")
    for label, path in outs.items():
        if path.is_dir():
            raise InputError(f"{label} {outputs[label]} is a folder; give a file name")
        folder = path.parent
        if label in new_folders:
            while not folder.exists() and folder != folder.parent:
                folder = folder.parent
        if not folder.is_dir():
            raise InputError(f"cannot write {label} {outputs[label]}: folder {folder} does not exist; create it first")
        try:
            fd, probe = tempfile.mkstemp(prefix=".write-test.", dir=folder)
        except OSError as exc:
            raise InputError(f"cannot write {label} {outputs[label]}: folder {folder} is not writable "
                             f"({exc.strerror}); choose another place") from exc
        os.close(fd)
        os.unlink(probe)


def atomic_savez(path, arrays: dict[str, np.ndarray], meta: dict[str, Any]) -> None:
    """Write arrays + JSON metadata to `path` so that it is either whole or untouched.

    Non-finite numbers in `meta` are written as the strings "nan", "inf", "-inf"
    (JSON has no NaN), which `float()` reads back."""
    text = json.dumps(jsonable(meta), sort_keys=True, allow_nan=False)
    blob = np.frombuffer(text.encode(), dtype=np.uint8)
    atomic_write(path, lambda f: np.savez(f, **arrays, **{META_KEY: blob}))


def read_saved_npz(path, kind: str = "model", check=None) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """Arrays and metadata of a file written by `atomic_savez`, or a clear `ModelFileError`.

    The file is untrusted: its headers are read first (validation.npz_contents:
    sizes agree, no pickles, bounded inflation), then the metadata, then
    `check(meta, contents)` (contents: name -> (shape, dtype)) may refuse it
    (with `corrupt_if_invalid` around what is about the file's integrity),
    and only then are the arrays read; every array must be finite.
    """
    path = Path(path)
    if not path.is_file():
        raise ModelFileError(f"no {kind} file at {path}; check the path")
    contents = npz_contents(path, ModelFileError, f"{kind} file")
    if META_KEY not in contents:
        raise ModelFileError(f"{path} is an .npz without mlp_backends metadata: not a {kind} file of ours")
    shape, dtype = contents.pop(META_KEY)
    if dtype != np.uint8 or len(shape) != 1 or shape[0] > MAX_META_BYTES:
        raise ModelFileError(f"{path} has corrupt metadata ({dtype} {shape}); save it again")
    try:
        with np.load(path, allow_pickle=False) as z:
            meta = json.loads(z[META_KEY].tobytes().decode())
            if not isinstance(meta, dict):
                raise ModelFileError(f"{path} has corrupt metadata (a {type(meta).__name__}, not a mapping); "
                                     "save it again")
            if check is not None:
                check(meta, contents)
            arrays = {k: z[k] for k in contents}
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:  # ValueErrors, but about the metadata
        raise ModelFileError(f"{path} has corrupt metadata ({one_line(exc)}); save it again") from exc
    except (zipfile.BadZipFile, EOFError, OSError, ValueError) as exc:
        if isinstance(exc, UsageError):
            raise
        raise ModelFileError(f"{path} is not a readable {kind} file (truncated or corrupt: {one_line(exc)}); "
                             "save it again") from exc
    for name, array in arrays.items():
        if array.dtype.kind in "fc" and not np.isfinite(array).all():
            raise ModelFileError(f"{path} is corrupt: array {name!r} holds NaN or infinity; save it again")
    return arrays, meta


@contextlib.contextmanager
def corrupt_if_invalid(path):
    """Inside: a validation error about a file's contents becomes `ModelFileError` naming the file."""
    try:
        yield
    except UsageError as exc:
        if isinstance(exc, ModelFileError):
            raise
        raise ModelFileError(f"{path} is corrupt: {exc}") from exc


def check_format(meta: dict, path, kind: str, fmt: str, version: int) -> None:
    """The file says it is ours, of this kind, in a format this version reads."""
    if meta.get("format") != fmt:
        raise ModelFileError(f"{path} is not an mlp_backends {kind} (format {str(meta.get('format'))[:40]!r})")
    v = meta.get("format_version")
    if isinstance(v, bool) or not isinstance(v, int):
        raise ModelFileError(f"{path} is corrupt: format_version {str(v)[:40]!r} is not a whole number")
    if v > version:
        raise ModelFileError(f"{path} has {kind} format {v}, newer than this mlp_backends reads ({version}); "
                             "upgrade mlp-backends")


def save(model, path) -> None:
    """Write `model` to `path` (.npz): its parameters, and its config, backend and extras as
    JSON metadata, in one atomic replace."""
    from . import __version__

    params = model.get_params()
    arrays = {f"{'W' if i % 2 == 0 else 'b'}{i // 2 + 1}": p for i, p in enumerate(params)}
    meta = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "library_version": __version__,
        "config": model.config(),
        "backend": model.backend.spec,
        "extra": model.extra,
    }
    atomic_savez(path, arrays, meta)


def load(path, backend=None, *, build):
    """The model saved in `path`, on `backend`; `build(config, backend)` makes the
    network (`MLP.from_config`: passed in, so that this module never imports the model).
    Every field of the file is checked before anything is built from it."""
    from .registry import get_backend

    backend = get_backend(backend)  # a bad backend is its own error, not a corrupt file
    found = {}

    def check(meta, contents):
        check_format(meta, path, "model", FORMAT, FORMAT_VERSION)
        with corrupt_if_invalid(path):
            cfg = check_config(meta.get("config"))
            shapes = layer_shapes(cfg["sizes"])
            check_arrays(contents, {f"{'W' if i % 2 == 0 else 'b'}{i // 2 + 1}": s for i, s in enumerate(shapes)})
            found.update(config=cfg, extra=check_extra(meta.get("extra", {}), cfg["sizes"]))

    arrays, _ = read_saved_npz(path, "model", check)
    model = build(found["config"], backend=backend)
    n_layers = len(model.sizes) - 1
    model.set_params([arrays[f"{kind}{i}"] for i in range(1, n_layers + 1) for kind in "Wb"])
    model.extra = found["extra"]
    return model
