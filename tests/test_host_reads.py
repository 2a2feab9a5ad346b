"""Training reads from the device exactly once per epoch.

A NumPy-backed plugin whose arrays count every way a value can reach the
host (`float`, `int`, `bool`, `.item()`, `.tolist()`, the backend's
`to_numpy`): on a GPU each of those stalls the device, so the epoch loop may
make one, at the end of the epoch, and no more.
"""

from __future__ import annotations

import types

import numpy as np
import pytest

from backends.numpy import NumPyBackend
from mlp_backends import MLP, optim, train

READS: list[str] = []


class CountingArray(np.ndarray):
    """An ndarray that notes each conversion of its values into a Python object."""

    def __float__(self):
        READS.append("float")
        return float(np.asarray(self).view(np.ndarray).reshape(()))

    def __int__(self):
        READS.append("int")
        return int(self.view(np.ndarray).reshape(()))

    def __index__(self):
        READS.append("index")
        return self.view(np.ndarray).reshape(()).__index__()

    def __bool__(self):
        READS.append("bool")
        return bool(self.view(np.ndarray).reshape(()))

    def item(self, *args):
        READS.append("item")
        return self.view(np.ndarray).item(*args)

    def tolist(self):
        READS.append("tolist")
        return self.view(np.ndarray).tolist()


def _counting_namespace(xp):
    """The compat NumPy namespace, with reductions giving 0-d CountingArrays, not NumPy scalars."""
    ns = types.SimpleNamespace(**{k: getattr(xp, k) for k in dir(xp) if not k.startswith("__")})

    def keep(fn):
        return lambda *a, **kw: np.asarray(fn(*a, **kw)).view(CountingArray)

    for name in ("sum", "max", "min", "mean", "argmax", "stack", "asarray"):
        setattr(ns, name, keep(getattr(xp, name)))
    return ns


class CountingBackend(NumPyBackend):
    name = "counting_numpy"

    def _setup(self, device):
        xp, dev = super()._setup(device)
        return _counting_namespace(xp), dev

    def asarray(self, host, dtype=None):
        return np.asarray(super().asarray(host, dtype)).view(CountingArray)

    def to_numpy(self, x):
        READS.append("to_numpy")
        return np.array(x).view(np.ndarray)

    def owns(self, x):
        return isinstance(x, CountingArray)

    def compile(self, step):
        return step  # the plain path: what every backend runs, compiled or not


@pytest.fixture
def counting():
    READS.clear()
    yield CountingBackend()
    READS.clear()


def test_the_counter_sees_host_reads(counting):
    x = counting.asarray(np.arange(3.0), "float32")
    total = counting.xp.sum(x)
    assert isinstance(total, CountingArray)
    float(total), bool(total), total.item()
    assert READS == ["float", "bool", "item"]


class MarkEpochs:
    def on_epoch_end(self, model, logs):
        READS.append("epoch end")


@pytest.mark.parametrize("optimizer", ["sgd", "adam"])
def test_one_host_read_per_epoch(counting, blobs, optimizer):
    X, y = blobs  # 60 rows: batches of 16 make four steps an epoch
    model = MLP(5, (8, 6), 3, "relu", backend=counting, dtype="float32", seed=0)
    Xd, Yd = counting.asarray(X, "float32"), counting.asarray(np.eye(3)[y], "float32")
    opt = optim.make_optimizer(optimizer, 0.01)
    READS.clear()
    history = train.run(model, Xd, Yd, optimizer=opt, epochs=3, batch_size=16, shuffle=True, seed=0,
                        callbacks=[MarkEpochs()])
    assert len(history) == 3 and model.optimizer_state.step == 12
    assert all(isinstance(p, CountingArray) for p in model.params), "training left the counting arrays"
    assert READS == ["to_numpy", "epoch end"] * 3
