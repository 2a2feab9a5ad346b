"""PyTorch's compiled step updates the parameters and moments in place, with the plain step's numbers.

`TorchBackend.in_place` turns this on (by default it is on for GPUs only); the
tests switch it on for the CPU, where the same code runs.

- Bit-identical parameters, moments, losses and hits to the pure step, for
  every optimizer, both dtypes, whole arrays and blocks of rows.
- The step writes into the tensors it is given (same objects, same storage).
- A bad batch (a NaN input, an absurd learning rate) changes nothing and
  reports NaN, decided on the device.
"""

from __future__ import annotations

import numpy as np
import pytest

from backends import inplace_formulas
from mlp_backends import get_backend, list_backends, optim, train
from conftest import step_problem

if not any(i.name == "torch" and i.usable for i in list_backends()):
    pytest.skip("torch is not usable here", allow_module_level=True)

import torch  # noqa: E402

@pytest.fixture(autouse=True)
def in_place(monkeypatch):
    monkeypatch.setattr(get_backend("torch"), "in_place", True)


OPTIMIZERS = {"sgd": optim.SGD(0.1), "momentum": optim.Momentum(0.05), "nesterov": optim.Momentum(0.05, nesterov=True),
              "adam": optim.Adam(0.01)}


def _train(step, be, params, opt, X, Y, batch=16, epochs=3):
    """Copies of params trained over `epochs` of three batches (16, 16, a short 8)."""
    params = [p.clone() for p in params]
    state, t, figures = opt.init(be.xp, params), 0, []
    for _ in range(epochs):
        for lo in range(0, X.shape[0], batch):
            t += 1
            given = [(p, p.data_ptr()) for p in params]
            params, state, loss, hits = step(params, state, X[lo:lo + batch], Y[lo:lo + batch], t)
            if step.mutates_params:
                assert all(p is q and p.data_ptr() == ptr for p, (q, ptr) in zip(params, given)), \
                    "an in-place step writes into the tensors it is given"
            figures += [float(loss), float(hits)]
    return [be.to_numpy(p) for p in params], [[be.to_numpy(a) for a in group] for group in state], figures


@pytest.mark.parametrize("name", list(OPTIMIZERS))
@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("block", [inplace_formulas.BLOCK, 8])  # 8: ragged blocks of one or two rows
def test_in_place_step_is_bit_identical_to_the_plain_step(name, dtype, block, monkeypatch):
    monkeypatch.setattr(inplace_formulas, "BLOCK", block)
    be, opt = get_backend("torch"), OPTIMIZERS[name]
    params, X, Y = step_problem(be, dtype)
    plain = train.make_step(be.xp, opt, "tanh", 0.01)
    fast = be.compile(plain)
    assert fast.mutates_params and not plain.mutates_params
    got, want = _train(fast, be, params, opt, X, Y), _train(plain, be, params, opt, X, Y)
    for g, w in zip(got[0], want[0]):
        assert g.dtype == w.dtype == np.dtype(dtype)
        np.testing.assert_array_equal(g, w)
    for group_got, group_want in zip(got[1], want[1]):
        for g, w in zip(group_got, group_want):
            np.testing.assert_array_equal(g, w)
    assert got[2] == want[2]
    assert not np.array_equal(got[0][0], be.to_numpy(params[0])), "training must have moved the weights"


# An absurd rate is caught where it overflows lr * g (SGD scales the gradients first); an
# overflow inside momentum's or Adam's own update is not caught before it is written (documented).
@pytest.mark.parametrize("name, bad", [(n, "nan input") for n in OPTIMIZERS] + [("sgd", "absurd rate")])
def test_a_bad_batch_changes_nothing_and_reports_nan(name, bad):
    be = get_backend("torch")
    opt = OPTIMIZERS[name]
    params, X, Y = step_problem(be, "float32")
    fast = be.compile(train.make_step(be.xp, opt, "relu", 0.0))
    params = [p.clone() for p in params]
    params, state, _, _ = fast(params, opt.init(be.xp, params), X[:16], Y[:16], 1)  # moments not zero
    kept = [p.clone() for p in params], [[a.clone() for a in group] for group in state]
    Xb = X[16:32].clone()
    if bad == "nan input":
        Xb[3, 2] = float("nan")
    else:  # lr * g overflows float32
        fast = be.compile(train.make_step(be.xp, optim.SGD(1e38), "relu", 0.0))
        Xb = Xb * 1e6
    params, state, loss, _ = fast(params, state, Xb, Y[16:32], 2)
    assert torch.isnan(loss)
    for p, k in zip(params, kept[0]):
        assert torch.equal(p, k)
    for group, kept_group in zip(state, kept[1]):
        for a, k in zip(group, kept_group):
            assert torch.equal(a, k)
    # and the next good batch trains as usual
    params, state, loss, _ = fast(params, state, X[16:32], Y[16:32], 3)
    assert torch.isfinite(loss) and not torch.equal(params[0], kept[0][0])
