"""Numerical agreement with the NumPy float64 reference: the checks that matter most.

The reference runs the same functions (nn.py, optim.py, train.make_step) on
`array_api_compat.numpy` in float64; the backend runs them on its own
namespace, in float32 and (where it has it) float64, plainly and through its
`compile` hook. Tolerances by dtype: float64 about 1e-10 relative, float32
about 1e-4 (`tolerance`).
"""

from __future__ import annotations

import numpy as np

from .. import nn, optim
from ..step import make_step
from .contract import describe, make_backend, supported_dtypes

SIZES = (5, 7, 6, 3)
ROWS = 24
#: Rows of each step: a full batch, the short last one, then a full one again
#: (a compiled step must handle a new shape and come back to the first).
BATCHES = ((0, 16), (16, 24), (0, 16))
#: The rows in a shuffled order, as the training loop takes them.
ORDER = np.random.default_rng(7).permutation(ROWS)
#: (label, optimizer, activation, l2): every optimizer, every activation, L2 once.
SCHEDULE = (
    ("sgd", optim.SGD(0.1), "sigmoid", 0.0),
    ("momentum", optim.Momentum(0.05), "relu", 0.01),
    ("nesterov", optim.Momentum(0.05, nesterov=True), "tanh", 0.0),
    ("adam", optim.Adam(0.01), "relu", 0.0),
)


def tolerance(dtype: str) -> dict:
    """Closeness to the NumPy float64 reference for results computed in `dtype`."""
    return {"rtol": 1e-10, "atol": 1e-12} if dtype == "float64" else {"rtol": 1e-4, "atol": 1e-5}


def problem(seed: int = 0):
    """Host float64 params [W1, b1, ...], X (ROWS, 5), one-hot Y and its labels y."""
    rng = np.random.default_rng(seed)
    params = []
    for a, b in zip(SIZES[:-1], SIZES[1:]):
        params += [rng.standard_normal((a, b)) / np.sqrt(a), rng.standard_normal(b) * 0.1]
    X = rng.standard_normal((ROWS, SIZES[0]))
    y = rng.integers(0, SIZES[-1], ROWS)
    return params, X, np.eye(SIZES[-1])[y], y


def _reference_xp():
    import array_api_compat.numpy as xp

    return xp


def _assert_close(b, got, want, dtype: str, what: str, fix: str) -> None:
    host = b.to_numpy(got) if not isinstance(got, np.ndarray) else got
    host = np.asarray(host, dtype=np.float64)
    if np.allclose(host, want, **tolerance(dtype)):
        return
    diff = np.max(np.abs(host - want)) if host.shape == np.shape(want) else "shape " + str(host.shape)
    raise AssertionError(f"{describe(b)}: {what} in {dtype} differs from the NumPy float64 reference "
                         f"(largest difference {diff}, tolerance {tolerance(dtype)}); {fix}")


def _param_names(n: int) -> list[str]:
    return [f"{'W' if i % 2 == 0 else 'b'}{i // 2 + 1}" for i in range(n)]


def _dtypes(b, dtype: str | None) -> tuple[str, ...]:
    """The dtypes to check: `dtype` alone, or every one the backend supports."""
    supported = supported_dtypes(b)
    if dtype is None:
        return supported
    if dtype not in supported:
        raise AssertionError(f"{describe(b)}: {dtype} is not supported on device {b.device!r}")
    return (dtype,)


def check_loss_and_gradients_agree(backend, device=None, dtype: str | None = None) -> None:
    """Forward logits, mean cross-entropy (+ L2) and every gradient agree with the reference,
    for each activation (in `dtype`, or every supported dtype)."""
    b = make_backend(backend, device)
    ref = _reference_xp()
    params, X, Y, _ = problem()
    fix = "the backend's namespace computes the standard's functions differently (check _setup's xp)"
    with b.device_context():
        _loss_and_gradients(b, ref, params, X, Y, dtype, fix)


def _loss_and_gradients(b, ref, params, X, Y, dtype, fix) -> None:
    dtypes = _dtypes(b, dtype)
    for dtype in dtypes:
        to = lambda a, dtype=dtype: b.asarray(np.array(a), dtype)  # noqa: E731 - a copy: asarray may alias
        for activation in nn.ACTIVATIONS:
            for l2 in (0.0, 0.01) if activation == "relu" else (0.0,):
                want_loss, want_grads, want_logits = nn.loss_and_grads(ref, params, X, Y, activation, l2)
                loss, grads, logits = nn.loss_and_grads(b.xp, [to(p) for p in params], to(X), to(Y),
                                                        activation, l2)
                case = f"{activation}, l2={l2}"
                _assert_close(b, logits, want_logits, dtype, f"the forward logits ({case})", fix)
                _assert_close(b, loss, want_loss, dtype, f"the loss ({case})", fix)
                for name, g, w in zip(_param_names(len(params)), grads, want_grads):
                    _assert_close(b, g, w, dtype, f"the gradient of {name} ({case})", fix)
                assert loss.dtype == b.dtype(dtype), (
                    f"{describe(b)}: the loss of {dtype} inputs came out {loss.dtype}: the namespace must keep "
                    "the inputs' dtype (no silent promotion or demotion)")


def _host_copy(b, arrays) -> list[np.ndarray]:
    return [np.array(b.to_numpy(a)) for a in arrays]


def _run_steps(b, dtype: str, compiled: bool) -> None:
    ref = _reference_xp()
    params0, X, Y, _ = problem()
    # Copies: asarray may alias the host array, which an in-place step then overwrites.
    to = lambda a: b.asarray(np.array(a), dtype)  # noqa: E731
    how = "compile(step)" if compiled else "the plain step"
    for label, opt, activation, l2 in SCHEDULE:
        ref_step = make_step(ref, opt, activation, l2)
        ref_params, ref_state = list(params0), opt.init(ref, params0)
        step = make_step(b.xp, opt, activation, l2)
        if compiled:
            step = b.compile(step)
            assert callable(step), f"{describe(b)}: compile(step) returned {step!r}, not a callable"
        mutates = bool(getattr(step, "mutates_params", False))
        gather = getattr(step, "gather", None)  # the loop takes shuffled batches through it
        X_all, Y_all = to(X), to(Y)
        params = [to(p) for p in params0]
        state = opt.init(b.xp, params)
        for t, (lo, hi) in enumerate(BATCHES, start=1):
            case = f"{label} ({activation}, l2={l2}), step {t}"
            rows = ORDER[lo:hi]
            if gather is not None:
                Xb, Yb = gather(X_all, Y_all, b.asarray(rows))
            else:
                Xb, Yb = to(X[rows]), to(Y[rows])
            inputs = [*params, *(a for group in state for a in group)]
            given = None if mutates else _host_copy(b, inputs)
            params, state, loss, hits = step(params, state, Xb, Yb, t)
            ref_params, ref_state, ref_loss, ref_hits = ref_step(ref_params, ref_state, X[rows], Y[rows], t)
            fix = ("compile(step) must return a step with the same numbers as the plain step: rebuild it "
                   "from the same math (step.rebuild) and keep optim.py's formulas"
                   if compiled else "the backend's namespace computes the standard's functions differently")
            _assert_close(b, loss, ref_loss, dtype, f"{how}: the loss of {case}", fix)
            _assert_close(b, hits, ref_hits, dtype, f"{how}: the count of correct predictions of {case}", fix)
            for name, p, w in zip(_param_names(len(params)), params, ref_params):
                _assert_close(b, p, w, dtype, f"{how}: {name} after {case}", fix)
                assert b.owns(p) and p.dtype == b.dtype(dtype), (
                    f"{describe(b)}: {how} returned {name} as a {type(p).__name__} of dtype {p.dtype} after "
                    f"{case}; parameters must stay this backend's {dtype} arrays")
            for i, (group, ref_group) in enumerate(zip(state, ref_state)):
                for name, s, w in zip(_param_names(len(params)), group, ref_group):
                    _assert_close(b, s, w, dtype, f"{how}: optimizer state {i} of {name} after {case}", fix)
            if given is not None:
                for before, now in zip(given, _host_copy(b, inputs)):
                    assert np.array_equal(before, now, equal_nan=True), (
                        f"{describe(b)}: {how} wrote into the parameters or state it was given ({case}) "
                        "without saying so: set step.mutates_params = True on a step that updates "
                        "in place or donates its inputs, so the training loop keeps no stale copies")


def check_plain_steps_agree(backend, device=None, dtype: str | None = None) -> None:
    """Several steps of every optimizer (SGD, momentum, Nesterov, Adam; every activation; L2)
    with the plain `train.make_step` on the backend's namespace agree with the reference."""
    b = make_backend(backend, device)
    with b.device_context():
        for one in _dtypes(b, dtype):
            _run_steps(b, one, compiled=False)


def check_compiled_steps_agree(backend, device=None, dtype: str | None = None) -> None:
    """The same steps through the plugin's `compile` hook agree with the reference, and a compiled
    step that writes into its inputs says so (`mutates_params`)."""
    b = make_backend(backend, device)
    with b.device_context():
        for one in _dtypes(b, dtype):
            _run_steps(b, one, compiled=True)


#: fit's settings: the optimizers' formulas are checked step by step above; this is the loop.
FIT = {
    "adam": dict(optimizer="adam", learning_rate=0.01),
    "article": None,  # model.train: full batch, in order, SGD
}


def check_fit_agrees(backend, device=None, dtype: str | None = None) -> None:
    """`MLP.fit` (shuffled mini-batches, a short last batch, two epochs) and the article's `train`
    give the reference's parameters and probabilities; outputs follow the inputs' kind."""
    from ..model import MLP

    b = make_backend(backend, device)
    if b.distributed:
        return  # trains on a cluster, not through the array loop; its own suite covers it
    _, X, _, y = problem(seed=1)
    fix = "MLP.fit runs train.run: check asarray of the shuffle order, xp.take, xp.stack and to_numpy"
    dtypes = _dtypes(b, dtype)
    for dtype in dtypes:
        for label, settings in FIT.items():
            models = []
            for where, kind in ((b, dtype), ("numpy", "float64")):
                model = MLP(SIZES[0], SIZES[1:-1], SIZES[-1], "tanh", backend=where, dtype=kind, seed=11)
                if settings is None:
                    model.train(X, y, epochs=3, learning_rate=0.5)
                else:
                    model.fit(X, y, epochs=2, batch_size=16, seed=5, **settings)
                models.append(model)
            model, reference = models
            for name, got, want in zip(_param_names(2 * len(SIZES) - 2), model.get_params(),
                                       reference.get_params()):
                assert got.dtype == np.dtype(dtype), f"{describe(b)}: get_params() gave {name} as {got.dtype}"
                _assert_close(b, got, want, dtype, f"{name} after fit ({label})", fix)
            proba = model.predict_proba(X)
            assert isinstance(proba, np.ndarray), (
                f"{describe(b)}: predict_proba(NumPy rows) returned a {type(proba).__name__}; NumPy in, NumPy out")
            _assert_close(b, proba, reference.predict_proba(X), dtype, f"predict_proba after fit ({label})", fix)
            on_device = model.predict_proba(b.asarray(X, dtype))
            assert b.owns(on_device), (
                f"{describe(b)}: predict_proba(an array of this backend) returned a {type(on_device).__name__}; "
                "the backend's arrays in, the backend's arrays out")
