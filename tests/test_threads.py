"""How training chooses CPU threads: the measured choice (on an injected clock), overrides, restoring."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from mlp_backends import MLP, InputError, threads
from mlp_backends.threads import Chooser, Knob, Session


class FakeClock:
    def __init__(self):
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


class Machine:
    """Runs steps the way train.run does; cost(n, steps_since_switch, step) is a step's
    seconds at n threads, added to the injected clock."""

    def __init__(self, chooser: Chooser, clock: FakeClock, cost, start: int = 8):
        self.chooser, self.clock, self.cost = chooser, clock, cost
        self.current, self.since, self.i = start, 0, 0

    def run(self, steps: int) -> list[int]:
        used, c = [], self.chooser
        for _ in range(steps):
            n = c.before()
            if n is not None and n != self.current:
                self.current, self.since = n, 0
            self.clock.now += self.cost(self.current, self.since, self.i)
            self.since += 1
            self.i += 1
            used.append(self.current)
            c.after()
            n = c.take_pending()
            if n is not None and n != self.current:
                self.current, self.since = n, 0
        return used


def drive(chooser: Chooser, clock: FakeClock, cost, steps: int) -> list[int]:
    """The count each of `steps` steps ran at."""
    return Machine(chooser, clock, cost).run(steps)


def steady(one: float, many: float):
    return lambda n, since, i: one if n == 1 else many


def test_keeps_all_threads_when_they_are_clearly_faster():
    clock = FakeClock()
    c = Chooser(4, clock=clock)
    used = drive(c, clock, steady(1.0, 0.5), 200)
    assert c.chosen == 4 and c.figures == {1: 1.0, 4: 0.5}
    assert used[-100:] == [4] * 100
    assert "4 threads 500 ms/step" in c.why()


@pytest.mark.parametrize("many", [1.2, 0.98])
def test_keeps_one_thread_unless_more_win_by_the_margin(many):
    clock = FakeClock()
    c = Chooser(2, clock=clock)
    used = drive(c, clock, steady(1.0, many), 150)
    assert c.chosen == 1 and used[-50:] == [1] * 50


def test_the_first_steps_after_a_switch_do_not_decide():
    # Threads just woken are slow for two steps; steady state two threads are faster.
    clock = FakeClock()
    c = Chooser(2, clock=clock, settle=2)
    used = drive(c, clock, lambda n, since, i: 1.0 if n == 1 else (2.5 if since < 2 else 0.6), 150)
    assert c.chosen == 2 and used[-20:] == [2] * 20


def test_a_far_slower_count_is_dropped_after_a_step_or_two():
    # A busy machine: spinning threads make each step 20x slower.
    clock = FakeClock()
    c = Chooser(2, clock=clock, settle=2, measure=6)
    used = drive(c, clock, steady(1.0, 20.0), 100)
    assert c.chosen == 1
    assert used.count(2) == 1  # one step, not the 3 x 8 of a full trial
    assert "stopped early" in c.why()


def test_a_count_twice_as_slow_is_dropped_once_its_first_steps_settle():
    # A busy machine where N threads cost twice one thread's step: not slow enough for the
    # abort rule, so it runs its settling steps, then one measured step decides.
    clock = FakeClock()
    c = Chooser(2, clock=clock, settle=2, measure=6)
    used = drive(c, clock, steady(1.0, 2.0), 100)
    assert c.chosen == 1 and used.count(2) == 3 and c.trials == 1
    assert used[:8] == [1] * 8 and used[8:11] == [2] * 3 and "stopped early" in c.why()


def test_a_clear_winner_is_decided_after_one_block_each():
    clock = FakeClock()
    c = Chooser(2, clock=clock, settle=2, measure=6)
    used = drive(c, clock, steady(1.0, 0.6), 60)
    assert c.trials == 1 and c.figures == pytest.approx({1: 1.0, 2: 0.6})
    assert used[:8] == [1] * 8 and used[8:] == [2] * 52  # 8 steps at one thread, then never again


def test_a_close_call_gets_every_block():
    clock = FakeClock()
    c = Chooser(2, clock=clock, settle=2, measure=6)
    used = drive(c, clock, steady(1.0, 0.9), 60)
    assert used[:48] == [1] * 8 + [2] * 16 + [1] * 16 + [2] * 8  # the order 1, N, N, 1, 1, N
    assert c.chosen == 2 and used[48:] == [2] * 12


def test_n_is_not_tried_while_other_processes_hold_the_other_cores():
    clock, busy = FakeClock(), [True]
    c = Chooser(2, clock=clock, settle=1, measure=6, first_run=20, busy=lambda: busy[0])
    machine = Machine(c, clock, steady(1.0, 0.5))
    used = machine.run(27)
    assert used == [1] * 27 and c.chosen == 1 and c.trials == 1  # the one-thread block, then one thread
    assert c.figures == {1: 1.0} and "2 threads not tried: other processes" in c.why()
    busy[0] = False  # the other process ended: the next check tries two threads and keeps them
    used = machine.run(40)
    assert used[:14] == [1] * 7 + [2] * 7  # its one-thread block, then two threads measured
    assert c.chosen == 2 and c.figures == pytest.approx({1: 1.0, 2: 0.5}) and "not tried" not in c.why()


def test_the_busy_check_is_asked_only_before_trying_more_threads():
    clock, asked = FakeClock(), []
    c = Chooser(2, clock=clock, settle=1, measure=6, busy=lambda: asked.append(len(asked)) or False)
    drive(c, clock, steady(1.0, 0.5), 30)
    assert asked == [0]  # once, as the trial turned to two threads; never per step


def test_a_session_asks_whether_the_other_cores_are_taken():
    for others, busy in ((0, False), (1, True), (3, True)):
        threads.forget()
        with Session(FakeKnob(2), None, ("busy?",), macs_per_step=1e9, clock=FakeClock(),
                     others=lambda others=others: others) as s:
            assert s.pace is not None and s.pace.busy() is busy
    threads.forget()


def test_others_running_sees_a_process_spinning_on_a_core():
    from mlp_backends.bench.busy import busy_core

    assert threads.others_running() >= 0
    with busy_core():
        seen = [threads.others_running() for _ in range(5)]
    assert max(seen) >= 1  # the spinner is running or waiting for a core in every look


def test_checks_again_later_and_follows_a_machine_that_became_busy():
    clock = FakeClock()
    c = Chooser(2, clock=clock, first_run=50)
    busy_from = 400
    machine = Machine(c, clock, lambda n, since, i: 1.0 if n == 1 else (0.5 if i < busy_from else 5.0))
    used = machine.run(busy_from)
    assert c.chosen == 2 and used[-50:].count(2) >= 42  # chosen while idle (a re-check's block aside)
    used = machine.run(400)
    # and given up once the machine got busy: a re-check now costs one step at 2 threads
    assert c.chosen == 1 and used[-50:].count(2) <= 1 and used[-8:] == [1] * 8
    assert c.trials >= 3


def test_the_same_answer_makes_the_checks_rarer():
    clock = FakeClock()
    c = Chooser(2, clock=clock, first_run=50)
    machine, decided = Machine(c, clock, steady(1.0, 0.5)), []
    for _ in range(3000):  # one step at a time, noting when each trial ends
        machine.run(1)
        if c.trials > len(decided):
            decided.append(clock.now)
    gaps = np.diff(decided)
    assert len(gaps) >= 3 and all(b > a for a, b in zip(gaps, gaps[1:])) and c.chosen == 2


class FakeKnob(Knob):
    name = "fake"

    def __init__(self, start: int):
        self.value, self.sets = start, []

    def get(self):
        return self.value

    def set(self, n):
        self.value = n
        self.sets.append(n)


def test_fixed_small_and_restored():
    knob = FakeKnob(2)
    with Session(knob, 2, ("k",), macs_per_step=1e9) as s:
        assert knob.value == 2 and s.pace is None and s.choice.as_dict() == {
            "mode": "fixed", "threads": 2, "why": "as asked"}
    with Session(knob, None, ("k",), macs_per_step=1e5) as s:
        assert knob.value == 1 and s.pace is None and "small matrix products" in s.choice.why
    assert knob.value == 2  # as before the run


def test_a_second_fit_in_the_process_means_one_thread_each_until_both_end():
    knob = FakeKnob(2)
    threads.forget()
    first = Session(knob, None, ("big",), macs_per_step=1e9, clock=FakeClock())
    with first:
        assert first.pace is not None
        with Session(knob, None, ("other",), macs_per_step=1e9) as second:
            assert knob.value == 1 and second.choice.why == threads.ONE_EACH
            first.step_begins()  # the first run notices at its next step
            assert first.pace is None and first.choice.threads == 1 and knob.value == 1
        assert knob.value == 1  # the first run goes on with one thread
    assert knob.value == 2
    threads.forget()


def test_settings_are_restored_when_the_last_fit_ends_whoever_started_first():
    knob = FakeKnob(2)
    with Session(None, None, ("library",), macs_per_step=1e9):  # a backend that sets its own threads
        with Session(knob, None, ("x",), macs_per_step=1e9):
            assert knob.value == 1
        assert knob.value == 1  # the other fit still runs
    assert knob.value == 2


def test_requested_reads_argument_then_environment(monkeypatch):
    monkeypatch.delenv(threads.ENV_VAR, raising=False)
    assert threads.requested(None) is None and threads.requested("auto") is None
    assert threads.requested(3) == 3 and threads.requested("2") == 2
    monkeypatch.setenv(threads.ENV_VAR, "1")
    assert threads.requested(None) == 1 and threads.requested(4) == 4
    monkeypatch.setenv(threads.ENV_VAR, "many")
    with pytest.raises(InputError, match=r"\$MLP_BACKENDS_THREADS must be a whole number"):
        threads.requested(None)
    for bad in (0, -1, True, 1.5, "x"):
        with pytest.raises(InputError, match="threads must be a whole number of at least 1 or 'auto'"):
            threads.requested(bad)


def test_fit_uses_the_count_asked_for_records_it_and_restores_blas():
    if not threads.BlasKnob.available():
        pytest.skip("threadpoolctl or a BLAS library is missing")
    knob = threads.BlasKnob()
    before = knob.get()
    seen = []

    class Watch:
        def on_epoch_end(self, model, logs):
            seen.append((knob.get(), logs["threads"]))

    X = np.random.default_rng(0).standard_normal((40, 5))
    model = MLP(5, 4, 3, backend="numpy", seed=0)
    history = model.fit(X, np.arange(40) % 3, epochs=2, batch_size=8, threads=1, callbacks=[Watch()])
    assert seen == [(1, 1), (1, 1)]
    assert history.threads == {"mode": "fixed", "threads": 1, "why": "as asked"}
    assert history["threads"] == [1, 1]
    assert knob.get() == before
    history = model.fit(X, np.arange(40) % 3, epochs=1, batch_size=8)
    assert history.threads["mode"] == "auto" and "small matrix products" in history.threads["why"]
    with pytest.raises(InputError, match="threads must be"):
        model.fit(X, np.arange(40) % 3, epochs=1, threads=0)


@pytest.mark.requires_backend("jax")
def test_a_backend_that_sets_its_own_threads_is_left_alone():
    model = MLP(3, 2, 2, backend="jax", seed=0)
    history = model.fit(np.eye(3), [0, 1, 1], epochs=1, batch_size=2)
    assert history.threads["mode"] == "library" and "threads" not in history.extra


def test_cli_threads_option_is_checked_before_training():
    out = subprocess.run([sys.executable, "-m", "mlp_backends.cli", "train", "--threads", "0"],
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 2 and "Traceback" not in out.stderr
    assert "'0' is not a thread count" in out.stderr
