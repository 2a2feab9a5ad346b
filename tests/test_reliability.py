"""Divergence, out-of-memory, determinism and threads: training fails loudly or not at all."""

from __future__ import annotations

import threading

import numpy as np
import pytest
from conftest import with_backend

from mlp_backends import MLP, DeviceMemoryError, DivergedError, get_backend, use_backend


def _exploding(blobs, backend="numpy", **kwargs):
    """SGD with an absurd step on unscaled data: the loss overflows within a few epochs."""
    X, y = blobs
    model = MLP(5, 16, 3, "relu", backend=backend, init="standard_normal")
    with np.errstate(all="ignore"):  # the plain NumPy step's overflow warnings, on the way to NaN
        return model, model.fit(X * 1e3, y, epochs=20, batch_size=60, learning_rate=1e6, optimizer="sgd",
                                shuffle=False, **kwargs)


def test_divergence_stops_with_the_epoch_named_and_keeps_finite_parameters(blobs, backend32):
    """On every backend, whichever way its compiled step keeps them: the parameters from
    before the epoch (a functional step), or those of the last finite step (NumPy in place)."""
    _check_divergence(*_exploding(blobs, backend32))


@pytest.mark.parametrize(("name", "switch"), [with_backend("jax", "jax", "donate"),
                                               with_backend("torch", "torch", "in_place")])
def test_divergence_with_gpu_memory_savers_keeps_finite_parameters(blobs, monkeypatch, name, switch):
    """On GPUs (by default), JAX's compile gives the step's buffers away and PyTorch's
    updates in place, so their steps drop bad batches on the device instead; here
    the same code runs on the CPU."""
    be = get_backend(name)
    monkeypatch.setattr(be, switch, True)
    model, history = _exploding(blobs, be)
    assert "kept the parameters of the last step whose loss and update were finite" in history.stopped_early
    _check_divergence(model, history)


def _check_divergence(model, history):
    assert "training diverged in epoch" in history.stopped_early
    assert "try a lower learning rate" in history.stopped_early
    diverged_at = int(history.stopped_early.split("epoch ")[1].split(":")[0])
    assert len(history) == diverged_at - 1 < 20
    assert all(np.isfinite(p).all() for p in model.get_params())
    assert np.isfinite(history.loss).all()


def test_divergence_can_raise_instead(blobs):
    with pytest.raises(DivergedError, match="diverged in epoch"):
        _exploding(blobs, on_divergence="raise")


OOM_PLUGIN = """
    from backends.numpy import NumPyBackend

    class OutOfMemoryError(RuntimeError):
        '''Named like CuPy's and PyTorch's.'''

    class TinyDevice(NumPyBackend):
        '''A device that holds at most 10000 numbers in one array.'''
        name = "tinydevice"

        def asarray(self, host, dtype=None):
            import numpy as np
            if np.asarray(host).size > 10000:
                raise OutOfMemoryError("out of memory allocating %d bytes" % np.asarray(host).nbytes)
            return super().asarray(host, dtype)
"""


def test_out_of_memory_becomes_a_clear_error_with_sizes(plugin_dir):
    plugin_dir("oomplug", OOM_PLUGIN, "tinydevice = oomplug:TinyDevice\n")
    model = MLP(20, 8, 2, backend="tinydevice")
    X = np.zeros((1000, 20))
    with pytest.raises(DeviceMemoryError) as info:
        model.fit(X, np.arange(1000) % 2, epochs=1, batch_size=50)
    message = str(info.value)
    assert "out of memory on tinydevice" in message and "OutOfMemoryError" in message
    assert "data 1000x20 = 0.1 MB" in message and "one batch of 50" in message
    assert "smaller --batch-size" in message
    assert isinstance(info.value, MemoryError)
    with pytest.raises(DeviceMemoryError, match="creating the parameters"):
        MLP(200, 100, 2, backend="tinydevice")


def test_same_seed_same_data_gives_bit_identical_parameters(digits):
    def run():
        model = MLP(64, (32, 16), 10, "relu", backend="numpy", seed=4)
        model.fit(digits.X_train, digits.y_train, epochs=3, batch_size=32, optimizer="adam")
        return model.get_params()

    first, second = run(), run()
    for a, b in zip(first, second):
        np.testing.assert_array_equal(a, b)
    other = MLP(64, (32, 16), 10, "relu", backend="numpy", seed=5)
    other.fit(digits.X_train, digits.y_train, epochs=3, batch_size=32, optimizer="adam")
    assert not np.array_equal(other.get_params()[0], first[0])  # the seed matters


def test_two_backends_train_at_once_in_two_threads_undisturbed(blobs):
    X, y = blobs
    specs = ["numpy", "array_api_strict"]

    def train(spec):
        model = MLP(5, 8, 3, backend=None, dtype="float64", seed=3)
        model.fit(X, y, epochs=20, batch_size=8, learning_rate=0.01)
        return model

    sequential = {}
    for spec in specs:
        with use_backend(spec):
            sequential[spec] = train(spec).get_params()

    results, start = {}, threading.Barrier(2)

    def worker(spec):
        with use_backend(spec):  # per-thread choice: a ContextVar
            start.wait()
            model = train(spec)
            results[spec] = (model.backend.name, model.get_params())

    threads = [threading.Thread(target=worker, args=(s,)) for s in specs]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    for spec in specs:
        name, params = results[spec]
        assert name == spec
        for a, b in zip(params, sequential[spec]):
            np.testing.assert_array_equal(a, b)
