"""Batches from disk reach the GPU through `Backend.stage_batches`: CuPy's copies the next
batch from pinned memory on a second stream (backends/cupy_staging.py). Its logic runs
here on NumPy with a stand-in for CuPy's streams, events and pinned memory that logs
every call; on a CUDA machine the last test trains with it for real."""

from __future__ import annotations

import types

import numpy as np
import pytest

from backends.cupy_staging import staged
from mlp_backends import MLP, get_backend
from mlp_backends.backend import Backend


class _Device(np.ndarray):
    """A "device" array: `set` is the asynchronous copy in, logged with its stream."""

    def set(self, host, stream=None):
        LOG.append(("copy", stream.name, self.__array_interface__["data"][0]))
        self[...] = host


class _Event:
    def __init__(self, name):
        self.name = name

    def synchronize(self):
        LOG.append(("host waits", self.name))


class _Stream:
    def __init__(self, name="copier", non_blocking=False):
        self.name, self.count = name, 0

    def record(self):
        self.count += 1
        return _Event(f"{self.name} {self.count}")

    def wait_event(self, event):
        LOG.append((f"{self.name} waits", event.name))


LOG: list = []
COMPUTE = _Stream("compute")


def _fake_cupy():
    allocations = []

    def alloc_pinned_memory(nbytes):
        allocations.append(nbytes)
        return bytearray(nbytes)

    cuda = types.SimpleNamespace(Stream=_Stream, alloc_pinned_memory=alloc_pinned_memory,
                                 get_current_stream=lambda: COMPUTE)
    return types.SimpleNamespace(cuda=cuda, empty=lambda shape, dtype: np.empty(shape, dtype).view(_Device),
                                 allocations=allocations)


@pytest.fixture(autouse=True)
def _fresh_log():
    LOG.clear()
    COMPUTE.count = 0


def test_each_batch_arrives_whole_through_two_reused_slots():
    cp = _fake_cupy()
    rng = np.random.default_rng(0)
    host = [rng.standard_normal((8, 3)).astype(np.float32) for _ in range(5)] + [np.ones((3, 3), np.float32)]
    got, slots = [], set()
    for k, (device, tag) in enumerate(staged(cp, ((h, i) for i, h in enumerate(host)), "float32")):
        assert tag == k and isinstance(device, _Device)
        np.testing.assert_array_equal(device, host[k])  # the short last batch too
        got.append(np.array(device))
        slots.add(device.__array_interface__["data"][0])
    assert len(got) == 6 and len(slots) == 2 and len(cp.allocations) == 2  # no allocation after the first two


def test_a_slot_is_refilled_only_after_its_last_batch_was_computed():
    cp = _fake_cupy()
    host = [np.full((4, 2), k, np.float32) for k in range(4)]
    for k, (_device, _) in enumerate(staged(cp, ((h, None) for h in host), "float32")):
        # The compute stream waited for this batch's copy before it was handed out.
        assert LOG[-1] == ("compute waits", f"copier {k + 1}")
        LOG.append(("computed", k))
    copies = [i for i, entry in enumerate(LOG) if entry[0] == "copy"]
    assert len(copies) == 4
    for k in (2, 3):  # slot k % 2 again: wait for batch k-2's kernels, and for its copy out of pinned memory
        before = LOG[:copies[k]]
        used = before.index(("computed", k - 2))
        assert ("copier waits", f"compute {k - 1}") in before[used:]
        assert ("host waits", f"copier {k - 1}") in before[used:]


class _StagingNumpy(type(get_backend("numpy"))):
    """NumPy with CuPy's staging logic on the stand-in: training must go through the hook."""

    calls = 0

    def stage_batches(self, batches, dtype):
        type(self).calls += 1
        return ((np.asarray(d), tag) for d, tag in staged(_fake_cupy(), batches, dtype))


def test_fit_from_disk_goes_through_the_hook_with_the_same_numbers(tmp_path, monkeypatch):
    from mlp_backends import outofcore

    monkeypatch.setattr(outofcore, "BUFFER_BYTES", 64 * 12 * 4)  # several buffers, short last batches
    monkeypatch.setattr(outofcore, "CHUNK_BYTES", 32 * 12 * 4)
    rng = np.random.default_rng(0)
    X = rng.standard_normal((300, 12)).astype(np.float32)
    y = rng.integers(0, 3, 300)
    np.save(tmp_path / "X.npy", X)
    fits = []
    for backend in (get_backend("numpy"), _StagingNumpy()):
        model = MLP(12, 8, 3, backend=backend, seed=0)
        model.fit(np.load(tmp_path / "X.npy", mmap_mode="r"), y, epochs=2, batch_size=20)
        fits.append(model.get_params())
    assert _StagingNumpy.calls == 2  # once per epoch
    for a, b in zip(*fits):
        np.testing.assert_array_equal(a, b)


@pytest.mark.requires_backend("cupy")
def test_cupy_trains_from_disk_with_staging_as_with_plain_copies(tmp_path, monkeypatch):
    rng = np.random.default_rng(0)
    X = rng.standard_normal((5000, 40)).astype(np.float32)
    y = rng.integers(0, 4, 5000)
    np.save(tmp_path / "X.npy", X)
    fits = []
    for plain in (False, True):
        backend = get_backend("cupy")
        if plain:
            monkeypatch.setattr(type(backend), "stage_batches", Backend.stage_batches)
        model = MLP(40, 32, 4, backend=backend, seed=0)
        model.fit(np.load(tmp_path / "X.npy", mmap_mode="r"), y, epochs=2, batch_size=64)
        fits.append(model.get_params())
    for a, b in zip(*fits):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
