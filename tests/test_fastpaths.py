"""The compile hooks' fast paths give the plain step's numbers.

- NumPy's compiled step (lean reductions) is bit-identical to the plain one.
- The elementwise-kernel path (what CuPy fuses) agrees on every backend.
- CuPy's fused step: tests/test_cupy_step.py.
"""

from __future__ import annotations

import numpy as np
import pytest
from conftest import step_problem, tolerance

from mlp_backends import get_backend, nn, optim, train

OPTIMIZERS = {"sgd": optim.SGD(0.1), "momentum": optim.Momentum(0.05, nesterov=True), "adam": optim.Adam(0.01)}


def _train(step, backend, params, opt, X, Y, batch=16, epochs=2):
    """Three batches an epoch (16, 16 and a short 8), losses and hits as host floats.

    Trains copies of `params`: NumPy's compiled step updates its arrays in place."""
    params = [backend.xp.asarray(p, copy=True) for p in params]
    xp, state, t, losses = backend.xp, opt.init(backend.xp, params), 0, []
    for _ in range(epochs):
        for lo in range(0, X.shape[0], batch):
            t += 1
            hi = min(lo + batch, X.shape[0])
            params, state, loss, hits = step(params, state, X[lo:hi, ...], Y[lo:hi, ...], t)
            losses.append((loss, hits))
    host = [float(v) for pair in losses for v in backend.to_numpy(xp.stack(pair))]
    return [backend.to_numpy(p) for p in params], host


@pytest.mark.parametrize("opt", list(OPTIMIZERS))
@pytest.mark.parametrize("activation", nn.ACTIVATIONS)
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_numpy_compiled_step_is_bit_identical_to_the_plain_step(opt, activation, dtype):
    be = get_backend("numpy")
    params, X, Y = step_problem(be, dtype)
    plain = train.make_step(be.xp, OPTIMIZERS[opt], activation, 0.01)
    fast = be.compile(plain)
    assert fast is not plain and fast.config["xp"] is not be.xp, "compile must build the lean step"
    got = _train(fast, be, params, OPTIMIZERS[opt], X, Y)
    want = _train(plain, be, params, OPTIMIZERS[opt], X, Y)
    for g, w in zip(got[0], want[0]):
        np.testing.assert_array_equal(g, w)
    assert got[1] == want[1]


# scikit-learn's model (mlp_backends.sklearn): its SGD with the rate in the state, its Adam.
SKLEARN_OPTIMIZERS = {"scheduled_sgd": optim.ScheduledSGD(0.1, 0.9, nesterov=True),
                      "adam_raw_eps": optim.Adam(0.01, raw_eps=True)}


@pytest.mark.parametrize("opt", list(SKLEARN_OPTIMIZERS))
@pytest.mark.parametrize("output", nn.OUTPUTS)
@pytest.mark.parametrize("activation", ["identity", "sigmoid"])
def test_numpy_compiled_scikit_learn_step_is_bit_identical_to_the_plain_step(opt, output, activation):
    """Weighted rows, L2 per sample, logistic or softmax outputs: the compiled step (lean
    namespace, in-place kernels, in-place Adam) gives the plain step's numbers."""
    be = get_backend("numpy")
    params, X, Y = step_problem(be, "float64")
    weights = np.random.default_rng(1).uniform(0.5, 2.0, (X.shape[0], 1))
    Yw = be.xp.concat([Y, be.asarray(weights, "float64")], axis=1)
    optimizer = SKLEARN_OPTIMIZERS[opt]
    plain = train.make_step(be.xp, optimizer, activation, 0.1, output=output, l2_per_sample=True, weighted=True)
    fast = be.compile(plain)
    assert fast.config["output"] == output and fast.config["weighted"]
    got = _train(fast, be, params, optimizer, X, Yw)
    want = _train(plain, be, params, optimizer, X, Yw)
    for g, w in zip(got[0], want[0]):
        np.testing.assert_array_equal(g, w)
    assert got[1] == want[1]


def test_lean_numpy_reductions_match_numpy_on_other_dtypes():
    xp = get_backend("numpy")._lean()
    ints, bools = np.arange(6).reshape(2, 3), np.array([[True, True], [False, True]])
    assert xp.sum(ints, axis=0).tolist() == [3, 5, 7]
    assert xp.sum(bools).item() == 3  # a bool sum counts; add.reduce alone would answer True
    assert xp.max(ints, axis=1).tolist() == [2, 5]
    np.testing.assert_array_equal(xp.argmax(np.array([[0.0, 2.0, 1.0]]), axis=1), [1])
    assert xp.astype(np.array([1.5, -2.5]), np.float32).dtype == np.float32
    assert xp.astype(bools, np.float64).tolist() == [[1.0, 1.0], [0.0, 1.0]]


def test_kernel_path_agrees_with_the_plain_step_on_every_backend(backend):
    _check_kernel_path(*backend, "relu")


@pytest.mark.parametrize("activation", ["sigmoid", "tanh"])
def test_kernel_path_agrees_for_every_activation(activation):
    _check_kernel_path(get_backend("numpy"), "float64", activation)


def _check_kernel_path(be, dtype, activation):
    calls = []

    def counting(fn):  # a stand-in for cupy.fuse that proves each kernel is used
        def call(*args):
            calls.append(fn)
            return fn(*args)
        return call

    params, X, Y = step_problem(be, dtype)
    plain = train.make_step(be.xp, optim.Adam(0.01), activation, 0.0)
    kerneled = plain.rebuild(kern=nn.kernels(be.xp, activation, wrap=counting))
    got = _train(kerneled, be, params, optim.Adam(0.01), X, Y, epochs=1)
    want = _train(plain, be, params, optim.Adam(0.01), X, Y, epochs=1)
    assert len(set(calls)) == 4, "activation, derivative, softmax-delta and likelihood must each run as a kernel"
    for g, w in zip(got[0], want[0]):
        np.testing.assert_allclose(g, w, **tolerance(dtype))
    np.testing.assert_allclose(got[1], want[1], **tolerance(dtype))


@pytest.mark.requires_backend("torch")
def test_torch_compile_opt_in_agrees_with_the_plain_step(monkeypatch):
    # Dynamo's "eager" backend traces the step as inductor would, without seconds of codegen.
    monkeypatch.setenv("MLP_BACKENDS_TORCH_COMPILE", "eager")
    be = get_backend("torch")
    params, X, Y = step_problem(be, "float32")
    plain = train.make_step(be.xp, optim.Adam(0.01), "relu", 0.0)
    fast = be.compile(plain)
    assert fast is not plain
    got = _train(fast, be, params, optim.Adam(0.01), X, Y, epochs=1)
    want = _train(plain, be, params, optim.Adam(0.01), X, Y, epochs=1)
    for g, w in zip(got[0], want[0]):
        np.testing.assert_allclose(g, w, **tolerance("float32"))
    np.testing.assert_allclose(got[1], want[1], **tolerance("float32"))


@pytest.mark.requires_backend("torch")
def test_torch_compile_is_off_unless_asked(monkeypatch):
    monkeypatch.delenv("MLP_BACKENDS_TORCH_COMPILE", raising=False)
    be = get_backend("torch")
    step = train.make_step(be.xp, optim.SGD(0.1), "relu", 0.0)
    monkeypatch.setattr(be, "in_place", True)
    fast = be.compile(step)
    assert type(fast.config["update"]).__name__ == "TorchInPlaceUpdate"
    assert not hasattr(fast, "_torchdynamo_orig_callable"), "no torch.compile"
    monkeypatch.setattr(be, "in_place", None)
    assert (be.compile(step) is step) is not be.is_gpu, "the in-place update is on by default on GPUs only"


def test_skip_non_finite_drops_a_bad_batch_on_the_device(backend):
    """The update a donating compile hook uses: optim.py's numbers on a good batch;
    on a bad one, the values it was given and a NaN loss, decided with where()."""
    be, dtype = backend
    xp, opt = be.xp, optim.Adam(0.01)
    params, X, Y = step_problem(be, dtype)
    plain = train.make_step(xp, opt, "relu", 0.0)
    skipping = plain.rebuild(update=train.SkipNonFinite(xp, opt))
    assert skipping.mutates_params and not plain.mutates_params
    host = lambda arrays: [be.to_numpy(a) for a in arrays]  # noqa: E731

    state = opt.init(xp, params)
    got, want = skipping(params, state, X[:16, ...], Y[:16, ...], 1), plain(params, state, X[:16, ...], Y[:16, ...], 1)
    def flat(result):
        return host([*result[0], *result[1][0], *result[1][1], result[2]])

    for g, w in zip(flat(got), flat(want)):
        np.testing.assert_allclose(g, w, **tolerance(dtype))

    params, state = got[0], got[1]  # moments not zero
    kept = host(params), [host(group) for group in state]
    bad = be.to_numpy(X[16:32, ...]).copy()
    bad[3, 2] = np.inf
    with np.errstate(all="ignore"):
        params, state, loss, _ = skipping(params, state, be.asarray(bad, dtype), Y[16:32, ...], 2)
    assert np.isnan(float(be.to_numpy(loss)))
    for g, k in zip(host(params), kept[0]):
        np.testing.assert_array_equal(g, k)
    for group, kept_group in zip(state, kept[1]):
        for g, k in zip(host(group), kept_group):
            np.testing.assert_array_equal(g, k)


@pytest.mark.requires_backend("jax")
@pytest.mark.parametrize("opt", list(OPTIMIZERS))
def test_jax_compiled_step_donates_its_parameters_and_state(opt, monkeypatch):
    """XLA reuses the step's inputs for its outputs, so training holds one set of parameters and
    moments; the numbers are the plain step's, over epochs with a short last batch. (Donation
    is on by default on GPUs; here it is switched on for the CPU.)"""
    be = get_backend("jax")
    if not be.is_gpu:
        default = be.compile(train.make_step(be.xp, OPTIMIZERS[opt], "tanh", 0.0))
        assert not getattr(default, "mutates_params", False), "on the CPU, donation is off unless asked for"
    monkeypatch.setattr(be, "donate", True)
    params, X, Y = step_problem(be, "float64")
    plain = train.make_step(be.xp, OPTIMIZERS[opt], "tanh", 0.01)
    fast = be.compile(plain)
    assert fast.mutates_params, "train.run must not keep arrays the step gives away"
    given = [be.xp.asarray(p, copy=True) for p in params]
    state = OPTIMIZERS[opt].init(be.xp, given)
    new, new_state, _, _ = fast(given, state, X[:16], Y[:16], 1)
    assert all(p.is_deleted() for p in given) and all(a.is_deleted() for group in state for a in group)
    assert not any(p.is_deleted() for p in new)
    got = _train(fast, be, params, OPTIMIZERS[opt], X, Y)
    want = _train(plain, be, params, OPTIMIZERS[opt], X, Y)
    for g, w in zip(got[0], want[0]):
        np.testing.assert_allclose(g, w, **tolerance("float64"))
    np.testing.assert_allclose(got[1], want[1], **tolerance("float64"))
