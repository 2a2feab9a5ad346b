"""CuPy's fast step (backends/cupy_step.py), its kernels, the strict switch and the device context.

- The step logic runs on NumPy (it is written for any module with NumPy's
  names): bit-identical to the plain step for every optimizer, both dtypes,
  over epochs with a short last batch; in place; a bad batch changes nothing.
- Every kernel gets a valid C name and only scalars of its arrays' dtype.
- With CuPy installed (no GPU needed), CuPy's fusion really builds one kernel
  per function, named, in float32 for float32 arrays.
- Batches are gathered into buffers kept per shape, through the public fit.
- $MLP_BACKENDS_STRICT_FAST=1 turns a fallback into FastPathError.
- The model and the training loop run inside the backend's device context.
- On a GPU: the compiled step agrees with the plain one, and its kernels were fused.
"""

from __future__ import annotations

import importlib.util
import logging
import re

import array_api_compat.numpy as np_xp
import numpy as np
import pytest
from conftest import step_problem, tolerance

from backends import cupy_step
from backends.cupy_step import Gather, compile_step, step_kernels, update_kernels
from mlp_backends import MLP, get_backend, optim, train
from mlp_backends.backend import Backend, Probe
from mlp_backends.errors import FastPathError
from mlp_backends.fastpath import STRICT_ENV, fall_back

OPTIMIZERS = {"sgd": optim.SGD(0.1), "momentum": optim.Momentum(0.05), "nesterov": optim.Momentum(0.05, nesterov=True),
              "adam": optim.Adam(0.01)}
C_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


class Recorder:
    """A stand-in for cupy.fuse: records each kernel's name and the scalars it is called with."""

    def __init__(self):
        self.names, self.scalars, self.calls = [], [], {}

    def __call__(self, fn):
        self.names.append(fn.__name__)

        def kernel(*args):
            self.calls[fn.__name__] = self.calls.get(fn.__name__, 0) + 1
            arrays = [a for a in args if isinstance(a, np.ndarray) and a.dtype.kind == "f"]
            self.scalars += [(fn.__name__, type(a), arrays[0].dtype if arrays else None)
                             for a in args if not isinstance(a, (np.ndarray, np.bool_))]  # ok: a boolean
            return fn(*args)

        return kernel


def _train(step, params, opt, X, Y, xp, batch=16, epochs=3):
    """Copies of params trained by `step` (three batches an epoch: 16, 16, a short 8)."""
    params = [p.copy() for p in params]
    state, t, figures = opt.init(xp, params), 0, []
    for _ in range(epochs):
        for lo in range(0, X.shape[0], batch):
            t += 1
            given = list(params)
            params, state, loss, hits = step(params, state, X[lo:lo + batch], Y[lo:lo + batch], t)
            if step.mutates_params:
                assert all(p is q for p, q in zip(params, given)), "the step writes into the arrays it is given"
            figures += [float(loss), float(hits)]
    return params, state, figures


@pytest.mark.parametrize("name", list(OPTIMIZERS))
@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("activation", ["relu", "sigmoid"])
def test_step_on_numpy_is_bit_identical_to_the_plain_step(name, dtype, activation):
    be, opt, fuse = get_backend("numpy"), OPTIMIZERS[name], Recorder()
    params, X, Y = step_problem(be, dtype)
    plain = train.make_step(np_xp, opt, activation, 0.01)
    fast = compile_step(plain, np, fuse)
    assert fast.mutates_params and not plain.mutates_params
    got, want = _train(fast, params, opt, X, Y, np_xp), _train(plain, params, opt, X, Y, np_xp)
    for g, w in zip(got[0] + [a for grp in got[1] for a in grp], want[0] + [a for grp in want[1] for a in grp]):
        assert g.dtype == np.dtype(dtype)
        np.testing.assert_array_equal(g, w)
    assert got[2] == want[2]
    update = {"sgd": "mlp_sgd", "momentum": "mlp_momentum", "nesterov": "mlp_nesterov", "adam": "mlp_adam"}[name]
    for kernel in (f"mlp_{activation}_bias", f"mlp_{activation}_grad", "mlp_softmax_minus_target",
                   "mlp_log_likelihood", "mlp_scaled_sum", "mlp_judge", update):
        assert fuse.calls.get(kernel), f"{kernel} never ran"


def test_kernels_have_c_names_and_get_scalars_of_their_arrays_dtype():
    be, fuse = get_backend("numpy"), Recorder()
    for name in OPTIMIZERS:
        params, X, Y = step_problem(be, "float32")
        step = compile_step(train.make_step(np_xp, OPTIMIZERS[name], "tanh", 0.0), np, fuse)
        _train(step, params, OPTIMIZERS[name], X, Y, np_xp, epochs=1)
    assert len(fuse.names) == 4 + 6, "four step kernels and six update kernels, each made once and kept"
    assert all(C_NAME.fullmatch(n) for n in fuse.names), fuse.names
    assert fuse.scalars, "the softmax kernel gets the batch size, the updates their coefficients"
    for kernel, kind, _dtype in fuse.scalars:
        # A Python number (or a float64 one) would make CuPy 13's fusion promote float32 to float64.
        assert issubclass(kind, np.generic) and np.dtype(kind) == np.float32, (kernel, kind)


@pytest.mark.parametrize("name", list(OPTIMIZERS))
def test_a_bad_batch_changes_nothing_and_reports_nan(name):
    be, opt = get_backend("numpy"), OPTIMIZERS[name]
    params, X, Y = step_problem(be, "float32")
    step = compile_step(train.make_step(np_xp, opt, "relu", 0.0), np, Recorder())
    params, state, _ = _train(step, params, opt, X, Y, np_xp, epochs=1)  # moments not zero
    kept = [p.copy() for p in params], [[a.copy() for a in grp] for grp in state]
    bad = X[:16].copy()
    bad[2, 1] = np.inf
    with np.errstate(all="ignore"):
        params, state, loss, _ = step(params, state, bad, Y[:16], 4)
    assert np.isnan(loss)
    for p, k in zip(params, kept[0]):
        np.testing.assert_array_equal(p, k)
    for grp, kept_grp in zip(state, kept[1]):
        for a, k in zip(grp, kept_grp):
            np.testing.assert_array_equal(a, k)


def test_gather_keeps_one_buffer_pair_per_batch_shape():
    X, Y = np.arange(40.0).reshape(10, 4), np.eye(10)
    gather = Gather(np)
    short = gather(X, Y, np.array([9, 1]))  # resuming at a short last batch comes first
    full = gather(X, Y, np.array([3, 0, 7]))
    np.testing.assert_array_equal(full[0], X[[3, 0, 7]])
    np.testing.assert_array_equal(short[0], X[[9, 1]])
    again = gather(X, Y, np.array([1, 2, 4]))
    assert again[0] is full[0] and again[1] is full[1], "a later full batch reuses the full batch's buffers"
    np.testing.assert_array_equal(again[1], Y[[1, 2, 4]])
    assert gather(X, Y, np.array([5, 6]))[0] is short[0]


class StandIn(Backend):
    """NumPy with CuPy's compile hook (cupy_step on NumPy's names), for the public fit."""

    name = "cupy_on_numpy"

    @classmethod
    def probe(cls):
        return Probe(True, devices=("cpu",))

    def _setup(self, device):
        return np_xp, "cpu"

    def compile(self, step):
        self.compiled = compile_step(step, np, Recorder())
        return self.compiled


def test_fit_with_the_cupy_step_on_numpy_matches_numpy_and_gathers_into_its_buffers(blobs):
    X, y = blobs
    stand_in = StandIn()
    fits = {}
    for backend in (stand_in, "numpy"):
        model = MLP(5, 8, 3, activation="tanh", backend=backend, dtype="float64", seed=3)
        model.fit(X, y, epochs=3, batch_size=16, learning_rate=0.01, optimizer="adam")  # 60 rows: a short 12
        fits[backend if isinstance(backend, str) else "stand-in"] = model
    for a, b in zip(fits["stand-in"].get_params(), fits["numpy"].get_params()):
        np.testing.assert_allclose(a, b, **tolerance("float64"))
    assert fits["stand-in"].history.loss == pytest.approx(fits["numpy"].history.loss, rel=1e-10)
    shapes = sorted(key[0] for key in stand_in.compiled.gather.buffers)
    assert shapes == [12, 16], "one buffer pair for the full batches, one for the short last one"


# -- the strict switch ----------------------------------------------------------
def test_fall_back_logs_by_default_and_raises_under_the_strict_switch(monkeypatch, caplog):
    monkeypatch.delenv(STRICT_ENV, raising=False)
    with caplog.at_level(logging.WARNING):
        fall_back("the thing", ValueError("it broke"))
    assert "the thing failed (ValueError: it broke)" in caplog.text
    monkeypatch.setenv(STRICT_ENV, "1")
    with pytest.raises(FastPathError, match=f"the thing failed.*{STRICT_ENV}=1 forbids"):
        fall_back("the thing", ValueError("it broke"))
    monkeypatch.setenv(STRICT_ENV, "0")
    fall_back("the thing")  # "0" is off


class OwnAdam(optim.Adam):
    """A subclass may change the formulas, so the fused update does not take it."""


def test_an_optimizer_the_fused_update_cannot_take_is_a_fallback(monkeypatch, caplog):
    be = get_backend("numpy")
    params, X, Y = step_problem(be, "float32")
    step = train.make_step(np_xp, OwnAdam(0.01), "relu", 0.0)
    monkeypatch.setenv(STRICT_ENV, "1")
    with pytest.raises(FastPathError, match="fused in-place update for OwnAdam"):
        compile_step(step, np, Recorder())
    monkeypatch.delenv(STRICT_ENV)
    with caplog.at_level(logging.WARNING):
        fast = compile_step(step, np, Recorder())
    assert "fused in-place update for OwnAdam failed" in caplog.text
    got = _train(fast, params, OwnAdam(0.01), X, Y, np_xp, epochs=1)
    want = _train(step, params, OwnAdam(0.01), X, Y, np_xp, epochs=1)
    assert got[2] == want[2]


# -- CuPy itself, with no GPU ---------------------------------------------------
HAS_CUPY = importlib.util.find_spec("cupy") is not None


def _empty_cupy(shape, dtype):
    """A zero-size CuPy array that needs no device: enough for fusion to trace and build a kernel."""
    import cupy

    memory = cupy.cuda.MemoryPointer(cupy.cuda.UnownedMemory(0, 0, None, device_id=0), 0)
    return cupy.ndarray(shape, dtype, memptr=memory)


def _build(kernel, *args):
    """Call a typed, fused kernel: fusion traces it and builds the CUDA kernel object, then the
    launch fails without a GPU (on a GPU, a zero-size launch does nothing). Returns
    (CuPy's Fusion object, the kernels it built): CuPy internals, as of v13 and v14."""
    import cupy

    try:
        kernel(*args)
    except cupy.cuda.runtime.CUDARuntimeError:
        pass
    fusion = kernel.fused
    return fusion, [k for k, _ in fusion._memo.values()]


@pytest.mark.skipif(not HAS_CUPY, reason="cupy is not installed")
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_cupy_fuse_builds_one_named_kernel_per_function_in_the_arrays_dtype(dtype):
    from backends.cupy import _fusable_cupy, _fuse

    dt = np.dtype(dtype)
    fuse = lambda fn: _fuse(fn).fusion  # noqa: E731 - the Fusion object that the backend's _fuse makes
    a, row, zero_d, ok = (_empty_cupy(s, t) for s, t in (((0, 3), dt), ((3,), dt), ((), dt), ((), np.bool_)))
    m = _fusable_cupy()
    calls = []
    for activation in ("relu", "sigmoid", "tanh"):
        k = step_kernels(m, activation, fuse)
        calls += [(k.activate, (a, row)), (k.activation_grad, (a, a))]
    calls += [(k.softmax_delta, (a, a, 16)), (k.log_likelihood, (a, a))]
    u = update_kernels(m, fuse)
    calls += [(u["scaled_sum"], (a, 0.1)), (u["judge"], (zero_d, float("nan"), zero_d, zero_d)),
              (u["sgd"], (a, a, ok, 0.1)), (u["momentum"], (a, a, a, ok, 0.1, 0.9)),
              (u["nesterov"], (a, a, a, ok, 0.1, 0.9)),
              (u["adam"], (a, a, a, a, ok, 0.9, 0.1, 0.999, 0.001, 0.01, 1e-8))]
    for kernel, args in calls:
        fusion, built = _build(kernel, *args)
        assert fusion.new_fusion is None, f"{fusion.name}: fusion could not trace it"
        assert len(built) == 1 and built[0].name == kernel.__name__ and C_NAME.fullmatch(built[0].name)
        dtypes = {p.dtype for p in built[0].in_params + built[0].out_params}
        assert dtypes <= {dt, np.dtype(np.bool_)}, f"{kernel.__name__}: {dtypes}"


@pytest.mark.skipif(not HAS_CUPY, reason="cupy is not installed")
def test_a_function_cupy_cannot_fuse_is_a_fallback_that_strict_mode_refuses(monkeypatch):
    from backends.cupy import _fuse

    # A lambda's name "<lambda>" is no kernel name: CuPy's fusion refuses it (what nn.kernels avoids).
    kernel = _fuse(lambda z: z + 1)
    monkeypatch.setenv(STRICT_ENV, "1")
    with pytest.raises(FastPathError, match="cupy.fuse of the kernel <lambda> failed"):
        kernel(_empty_cupy((0, 3), np.float32))
    assert not kernel.is_fused()


def test_cupy_typed_scalars_follow_the_first_floating_array():
    seen = []
    kernel = cupy_step.typed(lambda *args: seen.extend(args))
    ok = np.asarray(True)
    kernel(np.zeros(2, np.float32), 3, 0.5, np.float64(2.0), ok, True)
    assert [type(v) for v in seen[1:4]] == [np.float32] * 3 and seen[4] is ok and seen[5] is True


# -- the device context -----------------------------------------------------------
class Device:
    """A fake device: counts how deep the code is inside it."""

    def __init__(self):
        self.depth = 0
        self.entered = 0

    def __enter__(self):
        self.depth += 1
        self.entered += 1

    def __exit__(self, *exc):
        self.depth -= 1


class Guarded:
    """The array namespace, failing any call made outside the device's context."""

    def __init__(self, device):
        self._device = device

    def __getattr__(self, name):
        attr = getattr(np_xp, name)
        if not callable(attr) or isinstance(attr, type):
            return attr

        def call(*args, **kwargs):
            assert self._device.depth > 0, f"xp.{name} called outside the backend's device context"
            return attr(*args, **kwargs)

        return call


class OnDevice(Backend):
    name = "on_device"

    @classmethod
    def probe(cls):
        return Probe(True, devices=("fake",))

    def _setup(self, device):
        dev = Device()
        return Guarded(dev), dev

    def device_context(self):
        return self.device

    def asarray(self, host, dtype=None):
        return np.asarray(host, dtype=dtype)


def test_fit_and_inference_run_inside_the_backends_device_context(blobs):
    X, y = blobs
    be = OnDevice()
    model = MLP(5, 8, 3, backend=be, dtype="float64")
    model.fit(X, y, epochs=2, batch_size=16, validation_data=(X, y))
    model.predict(X), model.predict_proba(X), model.score(X, y), model.loss(X, y), model.loss_and_gradients(X, y)
    assert be.device.entered >= 6 and be.device.depth == 0


# -- on a GPU ------------------------------------------------------------------
@pytest.mark.requires_backend("cupy")
@pytest.mark.parametrize("name", list(OPTIMIZERS))
@pytest.mark.parametrize("activation", ["sigmoid", "relu"])
def test_cupy_fused_step_agrees_with_the_plain_step_and_its_kernels_are_fused(name, activation):
    be, opt = get_backend("cupy"), OPTIMIZERS[name]
    params, X, Y = step_problem(be, "float32")
    plain = train.make_step(be.xp, opt, activation, 0.0)
    fast = be.compile(plain)
    assert be.compile(train.make_step(be.xp, opt, activation, 0.0)) is fast, "a later fit reuses it"
    with be.device_context():
        got = _train(fast, [p.copy() for p in params], opt, X, Y, be.xp)
        want = _train(plain, [p.copy() for p in params], opt, X, Y, be.xp)
    for g, w in zip(got[0], want[0]):
        assert g.dtype == np.float32, "a fused kernel promoted the parameters"
        np.testing.assert_allclose(be.to_numpy(g), be.to_numpy(w), **tolerance("float32"))
    np.testing.assert_allclose(got[2], want[2], **tolerance("float32"))
    k = fast.config["kern"]
    for kernel in (k.activate, k.activation_grad, k.softmax_delta, k.log_likelihood):
        assert kernel.fused.is_fused(), f"{kernel.__name__} ran unfused"
