"""What the driver asks every Dask worker before it trains there. cloudpickle sends this
module's functions by value (the worker needs none of our code to run them), so a worker
without mlp_backends answers with the reason instead of failing to unpickle a task."""

from __future__ import annotations


def missing_mlp_backends() -> str | None:
    """None when this process can import mlp_backends, else why not, in one line."""
    try:
        import mlp_backends  # noqa: F401 - the import is the question
    except Exception as exc:  # noqa: BLE001 - any failure to import is the answer
        return f"{type(exc).__name__}: {exc}"
    return None
