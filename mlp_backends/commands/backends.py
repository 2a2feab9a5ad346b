"""`mlp-backends backends`: every registered backend, whether it runs here, and why not."""

from __future__ import annotations

import json


def run(args) -> int:
    """Print the registry's rows (as JSON with --json)."""
    from ..registry import list_backends

    rows = list_backends()
    if args.json:
        print(json.dumps([r.as_dict() for r in rows], indent=2))
        return 0
    width = max([len("backend")] + [len(r.name) for r in rows])
    print(f"{'backend':<{width}}  usable  {'version':<12}  devices / reason")
    for r in rows:
        where = ", ".join(r.devices) if r.usable else r.reason
        print(f"{r.name:<{width}}  {'yes' if r.usable else 'no':<6}  {r.version or '-':<12}  {where}")
    return 0
