"""Model files: one portable `.npz` (arrays W1, b1, ... plus JSON metadata), no pickle.

Saved from any backend, loaded on any backend. Writes go to a temporary file
in the same folder and are renamed into place, so an interrupted save never
leaves a broken model behind. Loading a truncated, corrupt, foreign or
newer-format file raises `ModelFileError` saying which.
"""

from __future__ import annotations

import json
import os
import tempfile
import zipfile
from pathlib import Path
from typing import Any

import numpy as np

from .errors import ModelFileError

FORMAT = "mlp_backends.model"
FORMAT_VERSION = 1
META_KEY = "__meta__"


def _default_mode() -> int:
    """What the umask gives a new file (mkstemp's own 0600 would hide it from others)."""
    mask = os.umask(0)
    os.umask(mask)
    return 0o666 & ~mask


def atomic_write(path, write, mode: str = "wb") -> None:
    """Call write(file) on a temporary file next to `path`, then rename it into place,
    so that `path` is either the whole new file or untouched (even after ^C)."""
    path = Path(path)
    if path.parent and not path.parent.is_dir():
        raise ModelFileError(f"cannot save to {path}: folder {path.parent} does not exist; create it first")
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent or ".")
    try:
        with os.fdopen(fd, mode, **({} if "b" in mode else {"newline": ""})) as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, _default_mode())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_savez(path, arrays: dict[str, np.ndarray], meta: dict[str, Any]) -> None:
    """Write arrays + JSON metadata to `path` so that it is either whole or untouched."""
    blob = np.frombuffer(json.dumps(meta, sort_keys=True).encode(), dtype=np.uint8)
    atomic_write(path, lambda f: np.savez(f, **arrays, **{META_KEY: blob}))


def read_npz(path, kind: str = "model") -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """Arrays and metadata of a file written by `atomic_savez`, or a clear error."""
    path = Path(path)
    if not path.is_file():
        raise ModelFileError(f"no {kind} file at {path}; check the path")
    try:
        with np.load(path, allow_pickle=False) as z:
            arrays = {k: z[k] for k in z.files}
    except (zipfile.BadZipFile, EOFError, OSError, ValueError) as exc:
        raise ModelFileError(
            f"{path} is not a readable {kind} file (truncated or corrupt: {exc}); save it again"
        ) from exc
    if META_KEY not in arrays:
        raise ModelFileError(f"{path} is an .npz without mlp_backends metadata: not a {kind} file of ours")
    try:
        meta = json.loads(arrays.pop(META_KEY).tobytes().decode())
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ModelFileError(f"{path} has corrupt metadata ({exc}); save it again") from exc
    return arrays, meta


def save(model, path) -> None:
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
    network (`MLP.from_config`: passed in, so that this module never imports the model)."""
    from .registry import get_backend

    backend = get_backend(backend)  # a bad backend is its own error, not a corrupt file
    arrays, meta = read_npz(path)
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise ModelFileError(f"{path} is not an mlp_backends model (format {meta.get('format')!r})")
    version = meta.get("format_version")
    if not isinstance(version, int) or version > FORMAT_VERSION:
        raise ModelFileError(
            f"{path} has model format {version!r}, newer than this mlp_backends reads ({FORMAT_VERSION}); "
            "upgrade mlp-backends"
        )
    try:
        model = build(meta["config"], backend=backend)
        n_layers = len(model.sizes) - 1
        model.set_params([arrays[f"{kind}{i}"] for i in range(1, n_layers + 1) for kind in "Wb"])
    except (KeyError, TypeError, IndexError, ValueError) as exc:
        raise ModelFileError(f"{path} is corrupt: its arrays or metadata do not fit ({exc})") from exc
    model.extra = meta.get("extra", {})
    return model
