"""What every command shares: the program's name, and choosing a backend with the reason."""

from __future__ import annotations

import os

PROG = "mlp-backends"


def choose_backend(spec: str | None):
    """The backend and why it was chosen, in words."""
    from ..registry import ENV_VAR, auto_choice, get_backend

    backend = get_backend(spec)
    if spec and spec != "auto":
        why = "named with --backend"
    elif not spec and os.environ.get(ENV_VAR) and os.environ[ENV_VAR] != "auto":
        why = f"from ${ENV_VAR}"
    else:
        why = auto_choice()[1]
    return backend, why


def examples(*lines: str) -> str:
    """A command's --help epilog: its example command lines."""
    return "examples:\n" + "\n".join(f"  {line}" for line in lines)
