"""Progress bars for long reads, conversions and checks: tqdm on a terminal, silence elsewhere.

The bar goes to stderr, so that a command whose stdout is data (predict) stays
clean; it appears only when stderr is a terminal and the work is big enough to
be worth watching.
"""

from __future__ import annotations

import contextlib
import sys

# Below this much work (bytes or rows, as the caller counts) a bar is only flicker.
MIN_TOTAL = 32 << 20


class _Silent:
    def update(self, n: int = 1) -> None:
        pass


@contextlib.contextmanager
def bar(total: int, desc: str, unit: str = "B", stream=None):
    """A context giving `update(n)`; a tqdm bar only on a terminal and for big `total`."""
    stream = stream or sys.stderr
    show = total >= MIN_TOTAL and getattr(stream, "isatty", lambda: False)()
    if show:
        try:
            from tqdm import tqdm
        except ImportError:  # no bar without the library: the work is the same
            show = False
    if not show:
        yield _Silent()
        return
    with tqdm(total=total, desc=desc, unit=unit, unit_scale=True, file=stream, leave=False,
              dynamic_ncols=True) as progress:
        yield progress
