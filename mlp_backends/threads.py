"""How many CPU threads training uses: chosen per run by measuring, or as the user says.

BLAS and OpenMP threads spin while they wait; on a shared machine, or with
small matrix products, they cost more than they give (on a 2-core machine
with one other busy process, two BLAS threads made `mnist` steps 8x slower
than one). So `fit` chooses:

- `threads=N` (or $MLP_BACKENDS_THREADS, or the CLI's `--threads`): N, fixed;
- small products (under `SMALL_MACS` multiply-adds a step): one thread, no
  measuring, since a trial costs more than threads could win there;
- otherwise `Chooser` times blocks of steps at one thread and at the count
  the process allows, alternating (1, N, N, 1, 1, N), discarding the first
  steps after each switch (threads just woken or still spinning distort
  them). It gives up on N as soon as its first settled steps are slower
  than one thread (on a busy machine every step at N costs twice one
  thread's or more), and decides after one block each when the difference
  is clear (an idle machine's N threads); only close calls get every block.
  It keeps the faster, and checks again after a stretch of steps that grows
  while the answer stays the same. It does not try N at all while other
  processes run on the other cores (`others_running`): there a single step at
  N cost up to ten at one thread, its spinning workers slowing the next ones.

A fit that runs while another fit runs in the same process (threads of a
Dask worker, a parallel search in threads) uses one thread: the settings
are process-wide. The settings in force before the first fit are restored
when the last one ends. Everything here is per process.
"""

from __future__ import annotations

import os
import statistics
import threading
import time
from dataclasses import dataclass
from typing import Callable

from .errors import InputError

ENV_VAR = "MLP_BACKENDS_THREADS"
#: Below this many multiply-adds per training step, one thread without measuring.
SMALL_MACS = 4_000_000


# -- what the user asked for ----------------------------------------------------------
def requested(threads: int | str | None) -> int | None:
    """The fixed count asked for (argument, else $MLP_BACKENDS_THREADS), or None for auto."""
    source = "threads"
    if threads is None:
        threads, source = os.environ.get(ENV_VAR, "").strip() or None, f"${ENV_VAR}"
    if threads is None or threads == "auto":
        return None
    if isinstance(threads, str) and threads.strip().isdigit():
        threads = int(threads)
    if isinstance(threads, bool) or not isinstance(threads, int) or threads < 1:
        raise InputError(f"{source} must be a whole number of at least 1 or 'auto', got {threads!r}")
    return threads


def others_running(samples: int = 3, gap: float = 1e-3) -> int:
    """Threads of other processes running or waiting for a core in each of `samples` looks
    at the machine, `gap` seconds apart (the fewest seen; 0 where the system does not say).

    Linux counts the runnable threads of the whole machine (/proc/loadavg); this process's
    own (its BLAS workers may still be spinning) are taken off. A process that keeps a core
    busy is in every look, one passing by rarely is.
    """
    fewest = None
    try:
        for i in range(samples):
            if i:
                time.sleep(gap)
            with open("/proc/loadavg") as f:
                running = int(f.read().split()[3].split("/")[0])
            ours = 0
            for task in os.listdir("/proc/self/task"):
                try:
                    with open(f"/proc/self/task/{task}/stat") as f:
                        ours += f.read().rsplit(")", 1)[1].split()[0] == "R"
                except OSError:  # the thread ended meanwhile
                    pass
            fewest = running - ours if fewest is None else min(fewest, running - ours)
    except (OSError, ValueError, IndexError):
        return 0
    return max(0, fewest or 0)


def usable_cores() -> int:
    """The cores this process may run on (its affinity), at least 1."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return max(1, os.cpu_count() or 1)


# -- the knobs a backend turns ------------------------------------------------------------
class Knob:
    """One library's thread setting: `get()` and `set(n)`, both process-wide."""

    name = ""

    def get(self) -> int:
        """The thread count in force now."""
        raise NotImplementedError

    def set(self, n: int) -> None:
        """Set the thread count to `n`, for the whole process."""
        raise NotImplementedError


class BlasKnob(Knob):
    """Every BLAS library loaded in the process (OpenBLAS, MKL, ...), through threadpoolctl."""

    name = "BLAS"
    _controller = None
    _lock = threading.Lock()

    @classmethod
    def available(cls) -> bool:
        """Whether threadpoolctl is installed and finds a BLAS library loaded in the process."""
        try:
            import threadpoolctl  # noqa: F401
        except ImportError:
            return False
        return bool(cls._libraries())

    @classmethod
    def _libraries(cls):
        with cls._lock:
            if cls._controller is None:  # scanning the loaded libraries costs milliseconds: once
                from threadpoolctl import ThreadpoolController

                cls._controller = ThreadpoolController()
            return [c for c in cls._controller.lib_controllers if c.user_api == "blas"]

    def get(self) -> int:
        return max((c.num_threads for c in self._libraries()), default=1)

    def set(self, n: int) -> None:
        for c in self._libraries():
            c.set_num_threads(n)


class TorchKnob(Knob):
    """PyTorch's intra-op thread pool (its BLAS and OpenMP loops)."""

    name = "torch"

    def get(self) -> int:
        import torch

        return torch.get_num_threads()

    def set(self, n: int) -> None:
        import torch

        torch.set_num_threads(n)


# -- the choice ---------------------------------------------------------------------------
@dataclass
class Choice:
    """What a run used: `mode` "fixed", "auto" or "library" (the library decides), the
    count in force at the end (None when the library decides), and why, in words."""

    mode: str
    threads: int | None
    why: str

    def as_dict(self) -> dict:
        """The choice as a JSON-able dict (what `History.threads` keeps)."""
        return {"mode": self.mode, "threads": self.threads, "why": self.why}


class Chooser:
    """Chooses between one thread and `most` by timing blocks of steps.

    The training loop calls `before()` ahead of each step (it returns a thread
    count to set now, or None to keep the current one) and `after()` once the
    step is done. The clock is read only while a trial runs; between trials
    the chooser counts steps. `clock` is injectable so tests are exact.
    """

    ORDER = (0, 1, 1, 0, 0, 1)  # candidate index per block: drift hits both alike

    def __init__(self, most: int, clock: Callable[[], float] = time.perf_counter, settle: int = 1,
                 measure: int = 6, margin: float = 0.05, abort: float = 2.0, slower: float = 1.25,
                 clear: float = 0.8, first_run: int = 400, longest_run: int = 100_000,
                 busy: Callable[[], bool] = lambda: False):
        self.candidates = (1, most)
        self.clock, self.settle, self.measure = clock, settle, measure
        # busy(): whether other processes hold the other cores now; asked before trying N
        self.busy = busy
        # margin: N must beat one thread by this fraction. abort: N's block so far over this many
        # one-thread steps (one step's worth of slack) drops it, settled or not. slower: N's settled
        # steps' median over this many times one thread's drops it. clear: a ratio under this after
        # one block each decides at once.
        self.margin, self.abort, self.slower, self.clear = margin, abort, slower, clear
        self.first_run, self.longest_run = first_run, longest_run
        self.chosen = 1
        self.figures: dict[int, float] = {}
        self.trials = 0
        self._run_length = first_run
        self._start_trial()

    # the trial: blocks of settle + measure steps, in ORDER
    def _start_trial(self) -> None:
        self._block = 0
        self._busy_seen = False
        self._times: dict[int, list[float]] = {n: [] for n in self.candidates}
        self._dropped: set[int] = set()
        self._begin_block()

    def _begin_block(self) -> None:
        self._in_block, self._block_times = 0, []

    def resume(self) -> None:
        """A new run starts: a trial left half-way restarts its block (threads may have changed)."""
        if self.trying:
            self._begin_block()

    @property
    def trying(self) -> bool:
        """Whether a trial is under way (the counts are still being measured)."""
        return self._block < len(self.ORDER)

    def _current(self) -> int:
        return self.candidates[self.ORDER[self._block]]

    def before(self) -> int | None:
        """The count to set before this step, or None to keep the current one."""
        if not self.trying:
            self._left -= 1
            if self._left > 0:
                return None
            self._start_trial()
        while self.trying and self._current() in self._dropped:
            self._block += 1
            self._begin_block()
        if not self.trying:
            return self._decide()
        if self._in_block == 0 and self._current() != 1 and self.busy():
            # Another process runs on every other core now: N threads would fight it, and a
            # single step at N costs up to ten at one thread there (spinning workers after it too).
            self._dropped.add(self._current())
            self._busy_seen = True
            self._block = len(self.ORDER)
            return self._decide()
        self._t0 = self.clock()
        return self._current() if self._in_block == 0 else None

    def after(self) -> None:
        """The step that `before()` prepared has finished."""
        if not self.trying:
            return
        elapsed = self.clock() - self._t0
        n = self._current()
        self._in_block += 1
        self._block_times.append(elapsed)
        if n != 1 and self._too_slow():
            # Slower than one thread: stop paying for it now. With two candidates, that decides.
            self._dropped.add(n)
            self._block = len(self.ORDER)
        elif self._in_block < self.settle + self.measure:
            return
        else:
            self._times[n].append(statistics.median(self._block_times[self.settle:]))
            self._block += 1
            self._begin_block()
            if self._clear_winner():
                self._block = len(self.ORDER)
        if not self.trying:
            self._pending = self._decide()

    def _too_slow(self) -> bool:
        one = self._times[1]
        if not one:
            return False
        one, times = statistics.median(one), self._block_times
        # The whole block so far against `abort` times as many one-thread steps: the first
        # steps after a switch may be slow, but not that slow.
        if sum(times) > self.abort * one * (len(times) + 1):
            return True
        settled = times[self.settle:]
        return bool(settled) and statistics.median(settled) > self.slower * one

    def _clear_winner(self) -> bool:
        one, many = self._times[1], self._times[self.candidates[1]]
        if not one or not many:
            return False
        a, b = statistics.median(one), statistics.median(many)
        return min(a, b) < self.clear * max(a, b)

    def _decide(self) -> int | None:
        one = statistics.median(self._times[1]) if self._times[1] else None
        most = self.candidates[1]
        many = statistics.median(self._times[most]) if self._times[most] else None
        self.figures = {k: v for k, v in ((1, one), (most, many)) if v is not None}
        winner = most if (many is not None and one is not None and many < (1 - self.margin) * one) else 1
        same = self.trials > 0 and winner == self.chosen
        self.trials += 1
        # The same answer again: check less often (up to longest_run steps between trials).
        self._run_length = min(self.longest_run, self._run_length * 2) if same else self.first_run
        self._left = self._run_length
        self.chosen = winner
        self._block = len(self.ORDER)
        return winner

    def take_pending(self) -> int | None:
        """The count decided at the end of the last trial, once (the loop sets it)."""
        pending, self._pending = getattr(self, "_pending", None), None
        return pending

    def why(self) -> str:
        """How the count was chosen, in words: each count's measured time per step."""
        if not self.figures:
            return "still measuring when training ended" if self.trying else "measuring"
        times = ", ".join(f"{n} thread{'s' * (n > 1)} {t * 1e3:.3g} ms/step" for n, t in self.figures.items())
        most = self.candidates[1]
        if self._busy_seen:
            dropped = f"; {most} threads not tried: other processes were running on the other cores"
        else:
            dropped = f"; {most} threads stopped early, far slower" if not self.figures.get(most) else ""
        return f"measured: {times}{dropped}"


# -- one run -----------------------------------------------------------------------------
_state_lock = threading.Lock()
_active = 0
_saved: dict[type, tuple[Knob, int]] = {}  # each kind of knob's setting before the first fit
_choosers: dict[tuple, Chooser] = {}


ONE_EACH = "another fit runs in this process: one thread each"


def shared() -> bool:
    """True while more than one fit runs in this process."""
    return _active > 1


class Session:
    """The thread settings of one training run: enter before the first step, exit after the last.

    `pace` is None when nothing is left to decide per step; otherwise the loop
    calls `step_begins()` / `step_ends()` around each step.
    """

    def __init__(self, knob: Knob | None, requested_threads: int | None, key: tuple, macs_per_step: float,
                 clock: Callable[[], float] = time.perf_counter, others: Callable[[], int] = others_running):
        self.knob, self.fixed, self.key = knob, requested_threads, key
        self.macs, self.clock, self.others = macs_per_step, clock, others
        self.pace: Chooser | None = None
        self.current: int | None = None
        self._choice = Choice("library", None, "this backend sets its own threads")

    @property
    def choice(self) -> Choice:
        """What this run uses now, and why."""
        if self.pace is not None:
            return Choice("auto", self.current, self.pace.why())
        return self._choice

    def __enter__(self) -> "Session":
        global _active
        with _state_lock:
            _active += 1
            if self.knob is not None and type(self.knob) not in _saved:
                _saved[type(self.knob)] = (self.knob, self.knob.get())
            together = _active > 1
        if self.knob is None:
            return self
        if self.fixed is not None:
            self._set(self.fixed)
            self._choice = Choice("fixed", self.fixed, "as asked")
            return self
        most = min(self._allowed(), usable_cores())
        if together:
            self._set(1)
            self._choice = Choice("auto", 1, ONE_EACH)
        elif most <= 1:
            self._set(1)
            self._choice = Choice("auto", 1, "one thread is all this process may use")
        elif self.macs < SMALL_MACS:
            self._set(1)
            self._choice = Choice("auto", 1, f"small matrix products ({self.macs / 1e6:.2g}M multiply-adds a step)")
        else:
            chooser = _choosers.get(self.key)
            if chooser is None or chooser.candidates[1] != most:
                chooser = _choosers[self.key] = Chooser(
                    most, clock=self.clock, busy=lambda others=self.others: others() >= most - 1)
            if chooser.trying:
                chooser.resume()
                self.current = self.knob.get()
            else:
                self._set(chooser.chosen)
            self.pace = chooser
        return self

    def _allowed(self) -> int:
        # What the process allows now (a parallel search's worker may already be capped).
        return _saved[type(self.knob)][1]

    def _set(self, n: int) -> None:
        self.knob.set(n)
        self.current = n

    def step_begins(self) -> None:
        """Before a step: set the count the trial or the choice asks for (one thread once
        another fit runs at the same time)."""
        pace = self.pace
        if shared():  # another fit started meanwhile: one thread from now on
            self._set(1)
            self._choice = Choice("auto", 1, ONE_EACH)
            self.pace = None
            return
        n = pace.before()
        if n is not None:
            self._set(n)

    def step_ends(self) -> None:
        """After a step: record its time, and set the count the measurement chose, if any."""
        pace = self.pace
        if pace is None:
            return
        pace.after()
        n = pace.take_pending()
        if n is not None:
            self._set(n)

    def __exit__(self, *exc) -> None:
        global _active
        with _state_lock:
            _active -= 1
            if _active == 0:
                for knob, count in _saved.values():
                    knob.set(count)
                _saved.clear()


def forget() -> None:
    """Forget every measured choice (benchmarks use it to time a first run again)."""
    _choosers.clear()
