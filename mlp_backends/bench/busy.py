"""A busy machine on demand: one background process spinning on a core.

Users rarely have a machine to themselves (a browser, a build, another job);
benchmarks measured only on an idle machine hide what threads cost there.
`busy_core()` starts a process that spins in a loop and stops it on exit.
"""

from __future__ import annotations

import contextlib
import subprocess
import sys
from typing import Iterator

SPIN = "while True:\n    pass\n"


@contextlib.contextmanager
def busy_core(on: bool = True) -> Iterator[subprocess.Popen | None]:
    """Keep one core busy inside the block (a spinning Python process); no-op when not `on`."""
    if not on:
        yield None
        return
    proc = subprocess.Popen([sys.executable, "-c", SPIN], stdin=subprocess.DEVNULL,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        yield proc
    finally:
        proc.kill()
        proc.wait()
