"""NumPy's compiled step updates the parameters and moments, and computes its elementwise
kernels, in place, with the plain step's numbers; so does PyTorch's update (on GPUs by
default; switched on here for the CPU).

- Bit-identical parameters, moments, losses and hits to the pure step, for
  every optimizer, both dtypes, whole arrays and blocks of rows, on both.
- A batch whose loss or update is not finite changes nothing and reports NaN, on both.
- What shares the model's arrays stays right: EarlyStopping's best parameters,
  get_params / set_params, divergence.
- The kernels equal nn.py's functions bit for bit and return the array they were given.
- Memory: an update holds no second copy of the parameters or moments, and a
  step about one batch of activations beyond its gradients.
"""

from __future__ import annotations

import tracemalloc

import numpy as np
import pytest
from conftest import step_problem, with_backend

import backends.numpy_inplace as inplace
from backends import inplace_formulas
from mlp_backends import MLP, DivergedError, get_backend, nn, optim, train

OPTIMIZERS = {"sgd": optim.SGD(0.1), "momentum": optim.Momentum(0.05), "nesterov": optim.Momentum(0.05, nesterov=True),
              "adam": optim.Adam(0.01)}


IN_PLACE = [with_backend("numpy"), with_backend("torch")]  # the backends whose compiled step updates in place


def _problem(name, dtype, monkeypatch):
    """The backend, with its in-place update on (PyTorch's is on for GPUs only by default:
    here the same code runs on the CPU), and step_problem's parameters, X and Y."""
    be = get_backend(name)
    if name == "torch":
        monkeypatch.setattr(be, "in_place", True)
    return (be, *step_problem(be, dtype))


def _copies(be, arrays):
    return [be.xp.asarray(a, copy=True) for a in arrays]


def _address(a):
    return a.data_ptr() if hasattr(a, "data_ptr") else a.ctypes.data


def _train(step, be, params, opt, X, Y, batch=16, epochs=3):
    """Copies of params trained over `epochs` of three batches (16, 16, a short 8); host arrays."""
    params = _copies(be, params)
    state, t, figures = opt.init(be.xp, params), 0, []
    for _ in range(epochs):
        for lo in range(0, X.shape[0], batch):
            t += 1
            given = [(p, _address(p)) for p in params]
            params, state, loss, hits = step(params, state, X[lo:lo + batch], Y[lo:lo + batch], t)
            if getattr(step, "mutates_params", False):
                assert all(p is q and _address(p) == address for p, (q, address) in zip(params, given)), \
                    "an in-place step writes into the arrays it is given"
            figures += [float(loss), float(hits)]
    return [be.to_numpy(p) for p in params], [[be.to_numpy(a) for a in group] for group in state], figures


@pytest.mark.parametrize("backend_name", IN_PLACE)
@pytest.mark.parametrize("name", list(OPTIMIZERS))
@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("block", [inplace_formulas.BLOCK, 8])  # 8: ragged blocks of one or two rows
def test_in_place_step_is_bit_identical_to_the_plain_step(backend_name, name, dtype, block, monkeypatch):
    monkeypatch.setattr(inplace_formulas, "BLOCK", block)
    opt = OPTIMIZERS[name]
    be, params, X, Y = _problem(backend_name, dtype, monkeypatch)
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


@pytest.mark.parametrize("backend_name", IN_PLACE)
@pytest.mark.parametrize("name", list(OPTIMIZERS))
def test_a_batch_with_a_non_finite_loss_changes_nothing(backend_name, name, monkeypatch):
    """NumPy judges the batch on the host from its floating-point flags, PyTorch on the
    device from the loss and the gradients' sums; either way nothing is written."""
    opt = OPTIMIZERS[name]
    be, params, X, Y = _problem(backend_name, "float32", monkeypatch)
    fast = be.compile(train.make_step(be.xp, opt, "relu", 0.0))
    params = _copies(be, params)
    params, state, _, _ = fast(params, opt.init(be.xp, params), X[:16], Y[:16], 1)  # moments not zero
    kept = [be.to_numpy(p).copy() for p in params], [[be.to_numpy(a).copy() for a in g] for g in state]
    bad = be.to_numpy(X[16:32]).copy()
    bad[3, 2] = np.nan
    with np.errstate(invalid="ignore"):
        params, state, loss, _ = fast(params, state, be.asarray(bad, "float32"), Y[16:32], 2)
    assert np.isnan(float(loss))
    for p, k in zip(params, kept[0]):
        np.testing.assert_array_equal(be.to_numpy(p), k)
    for group, group_kept in zip(state, kept[1]):
        for a, k in zip(group, group_kept):
            np.testing.assert_array_equal(be.to_numpy(a), k)
    # The next good batch continues exactly as the plain step would from there.
    plain = train.make_step(be.xp, opt, "relu", 0.0)
    want, _, want_loss, _ = plain(_copies(be, params), [_copies(be, g) for g in state], X[:16], Y[:16], 3)
    got, _, got_loss, _ = fast(params, state, X[:16], Y[:16], 3)
    assert float(got_loss) == float(want_loss)
    for g, w in zip(got, want):
        np.testing.assert_array_equal(be.to_numpy(g), be.to_numpy(w))


@pytest.mark.parametrize("backend_name", IN_PLACE)
def test_an_sgd_step_that_overflows_is_skipped_and_reported(backend_name, monkeypatch):
    be, params, X, Y = _problem(backend_name, "float32", monkeypatch)
    opt = optim.SGD(3e38)  # the loss is finite, lr * g is not (float32 ends near 3.4e38)
    plain = train.make_step(be.xp, opt, "relu", 0.0)
    X = X * 1e3  # gradients of the first layer above 1
    with np.errstate(over="ignore"):
        want, _, plain_loss, _ = plain(params, (), X[:16], Y[:16], 1)
    assert np.isfinite(float(plain_loss)) and not all(np.isfinite(be.to_numpy(p)).all() for p in want)
    fast = be.compile(plain)
    mine = _copies(be, params)
    mine, _, loss, _ = fast(mine, (), X[:16], Y[:16], 1)
    assert np.isnan(float(loss))
    for p, k in zip(mine, params):
        np.testing.assert_array_equal(be.to_numpy(p), be.to_numpy(k))


def test_divergence_in_place_keeps_the_last_finite_step(blobs):
    X, y = blobs
    model = MLP(5, 16, 3, "relu", backend="numpy", init="standard_normal")
    with np.errstate(all="ignore"):
        history = model.fit(X * 1e3, y, epochs=20, batch_size=20, learning_rate=1e6, optimizer="sgd",
                            shuffle=False)
    assert "training diverged in epoch" in history.stopped_early
    assert "kept the parameters of the last step whose loss and update were finite" in history.stopped_early
    assert "try a lower learning rate" in history.stopped_early
    assert all(np.isfinite(p).all() for p in model.get_params())
    with pytest.raises(DivergedError, match="last step whose loss and update were finite"), \
            np.errstate(all="ignore"):
        MLP(5, 16, 3, "relu", backend="numpy", init="standard_normal").fit(
            X * 1e3, y, epochs=20, batch_size=20, learning_rate=1e6, optimizer="sgd", on_divergence="raise")


class Overflows:
    """A callback whose own arithmetic overflows, as user code may."""

    def on_epoch_end(self, model, logs):
        np.float32(3e38) * np.float32(10)


def test_training_watches_floating_point_errors_only_inside_its_steps(blobs):
    X, y = blobs
    model = MLP(5, 8, 3, backend="numpy")
    with pytest.warns(RuntimeWarning, match="overflow"):  # the callback's own warning still shows
        history = model.fit(X, y, epochs=2, batch_size=16, callbacks=[Overflows()])
    assert len(history) == 2 and not history.stopped_early  # and no step was taken for bad
    with pytest.warns(RuntimeWarning, match="overflow"):  # NumPy's usual setting is back afterwards
        np.float32(3e38) * np.float32(10)


def test_the_plain_step_still_restores_the_epochs_start(blobs):
    X, y = blobs
    be = get_backend("numpy")
    model = MLP(5, 16, 3, "relu", backend=be, init="standard_normal")
    Xd, Yd = be.asarray(X * 1e3, "float32"), train.one_hot_targets(be, y, 3, "float32")
    opt = optim.SGD(1e6)
    with np.errstate(all="ignore"):
        history = train.run(model, Xd, Yd, optimizer=opt, epochs=20, batch_size=60, shuffle=False, seed=0,
                            step=train.make_step(be.xp, opt, "relu", 0.0))
    assert "kept the parameters from before that epoch" in history.stopped_early
    assert all(np.isfinite(p).all() for p in model.get_params())


@pytest.mark.parametrize("name", ["sgd", "adam"])
def test_early_stopping_restores_the_best_epoch_despite_in_place_updates(digits, name):
    def model():
        return MLP(64, 16, 10, "relu", backend="numpy", seed=1)

    # min_delta that no later epoch can beat: epoch 1 stays the best.
    stopper = train.EarlyStopping(patience=2, monitor="loss", min_delta=1e9)
    stopped = model()
    history = stopped.fit(digits.X_train, digits.y_train, epochs=10, batch_size=64, optimizer=name,
                          learning_rate=0.01, seed=0, callbacks=[stopper])
    assert len(history) == 3 and "restored its parameters" in history.stopped_early
    one = model()
    one.fit(digits.X_train, digits.y_train, epochs=1, batch_size=64, optimizer=name, learning_rate=0.01, seed=0)
    three = model()
    three.fit(digits.X_train, digits.y_train, epochs=3, batch_size=64, optimizer=name, learning_rate=0.01, seed=0)
    for got, want in zip(stopped.get_params(), one.get_params()):
        np.testing.assert_array_equal(got, want)
    assert not np.array_equal(three.get_params()[0], one.get_params()[0])


def test_get_params_and_set_params_do_not_share_memory_with_training(blobs):
    X, y = blobs
    model = MLP(5, 8, 3, backend="numpy", dtype="float64")
    mine = [np.array(p) for p in model.get_params()]
    model.set_params(mine)
    mine_before = [p.copy() for p in mine]
    taken = model.get_params()
    model.fit(X, y, epochs=2, batch_size=16, optimizer="adam", learning_rate=0.01)
    for a, b in zip(mine, mine_before):
        np.testing.assert_array_equal(a, b)  # the caller's arrays are not the model's
    for a, b in zip(taken, mine_before):
        np.testing.assert_array_equal(a, b)  # nor are the copies it handed out
    assert not np.array_equal(model.get_params()[0], mine_before[0])


@pytest.mark.parametrize("name", ["sgd", "momentum", "adam"])
def test_an_in_place_step_holds_no_second_copy_of_the_parameters(name):
    """Traced allocations in one step, beyond what existed before it: the gradients
    and a small batch's activations, not the new parameters and moments as well."""
    be = get_backend("numpy")
    sizes, batch = (300, 200, 10), 8
    rng = np.random.default_rng(0)
    params = [be.asarray(rng.standard_normal(s) * 0.01, "float32")
              for a, b in zip(sizes[:-1], sizes[1:]) for s in ((a, b), (b,))]
    X = be.asarray(rng.standard_normal((batch, sizes[0])), "float32")
    Y = be.asarray(np.eye(sizes[-1])[rng.integers(0, sizes[-1], batch)], "float32")
    one_copy = sum(p.nbytes for p in params)
    opt = optim.make_optimizer(name, 0.01)
    peaks = {path: _step_peak(be, opt, params, X, Y, path) / one_copy for path in ("in place", "plain")}
    # The gradients are one copy; this batch's activations are 2% of one.
    assert peaks["in place"] < 1.2, peaks
    assert peaks["plain"] > 1 + len(opt.init(be.xp, params)) + 0.5, peaks  # new params and moments besides


def _step_peak(be, opt, params, X, Y, path):
    """Bytes a second step allocates at its peak, beyond what exists before it."""
    step = train.make_step(be.xp, opt, "relu", 0.0)
    step = be.compile(step) if path == "in place" else step
    p, state = [a.copy() for a in params], opt.init(be.xp, params)
    p, state, _, _ = step(p, state, X, Y, 1)  # warm-up: scratch blocks exist
    tracemalloc.start()
    try:
        base = tracemalloc.get_traced_memory()[0]
        step(p, state, X, Y, 2)
        return tracemalloc.get_traced_memory()[1] - base
    finally:
        tracemalloc.stop()


def test_the_step_holds_about_one_batch_of_activations_beyond_the_gradients():
    """Wide hidden layers, few weights: the batch-sized arrays dominate. The kernels
    write into the step's own temporaries and backprop lets each activation go once
    used, so at the peak (the first layer's gradients) the step holds h1, its delta,
    the product that becomes the next delta and a boolean mask: 1.6 batches of
    activations (h1 and h2). The pure step holds 2.1 (z next to z + b, a float mask)."""
    be = get_backend("numpy")
    sizes, batch = (8, 256, 256, 3), 512
    rng = np.random.default_rng(0)
    params = [be.asarray(rng.standard_normal(s) * 0.1, "float32")
              for a, b in zip(sizes[:-1], sizes[1:]) for s in ((a, b), (b,))]
    X = be.asarray(rng.standard_normal((batch, sizes[0])), "float32")
    Y = be.asarray(np.eye(sizes[-1])[rng.integers(0, sizes[-1], batch)], "float32")
    grads, activations = sum(p.nbytes for p in params), batch * sum(sizes[1:-1]) * 4
    extra = {path: (_step_peak(be, optim.SGD(0.1), params, X, Y, path) - grads) / activations
             for path in ("in place", "plain")}
    assert extra["in place"] < 1.7, extra
    assert extra["plain"] > extra["in place"] + 0.3, extra


@pytest.mark.parametrize("activation", nn.ACTIVATIONS)
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_numpy_kernels_equal_nn_bit_for_bit_and_write_into_their_argument(activation, dtype):
    xp = get_backend("numpy").xp
    rng = np.random.default_rng(0)
    z, g = rng.standard_normal((2, 6, 5)).astype(dtype) * 3
    b = rng.standard_normal(5).astype(dtype)
    Y = np.eye(5, dtype=dtype)[rng.integers(0, 5, 6)]
    kern = inplace.kernels(activation)

    a = z.copy()
    assert kern.activate(a, b) is a
    np.testing.assert_array_equal(a, nn.activate(xp, activation, z + b))
    assert activation != "relu" or (a == 0).any() and (a > 0).any(), "the test must cover both sides of relu"

    d = g.copy()
    assert kern.activation_grad(a, d) is d
    np.testing.assert_array_equal(d, nn.activation_grad(xp, activation, a, g))

    log_p = nn.log_softmax(xp, z)
    delta = log_p.copy()
    assert kern.softmax_delta(delta, Y, 6) is delta
    np.testing.assert_array_equal(delta, nn.softmax_delta(xp, log_p, Y, 6))
    assert a.dtype == d.dtype == delta.dtype == np.dtype(dtype)
