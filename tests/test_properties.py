"""Property tests over random architectures, batch sizes and dtypes."""

from __future__ import annotations

import numpy as np
from conftest import finite_difference_grads, is_own, tolerance
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from mlp_backends import MLP, list_backends, nn

# Drawn from the backends that run here, probed when a test first draws one (not while collecting);
# dask has its own tests.
USABLE = st.deferred(lambda: st.sampled_from(
    [i.name for i in list_backends() if i.usable and not i.distributed and is_own(i)]))
PROPS = settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])

architectures = st.lists(st.integers(1, 7), min_size=1, max_size=3)


@PROPS
@given(
    backend=USABLE,
    dtype=st.sampled_from(["float32", "float64"]),
    hidden=architectures,
    activation=st.sampled_from(nn.ACTIVATIONS),
    batch=st.integers(1, 25),
    optimizer=st.sampled_from(["sgd", "momentum", "adam"]),
    seed=st.integers(0, 2**16),
)
def test_every_backend_agrees_with_numpy_float64(backend, dtype, hidden, activation, batch, optimizer, seed):
    rng = np.random.default_rng(seed)
    X, y = rng.normal(size=(20, 4)), rng.integers(0, 3, size=20)
    runs = {}
    for spec, dt in (("numpy", "float64"), (backend, dtype)):
        model = MLP(4, hidden, 3, activation, backend=spec, dtype=dt, seed=seed)
        model.fit(X, y, epochs=1, batch_size=batch, learning_rate=0.01, optimizer=optimizer)
        runs[spec, dt] = model.get_params()
    reference, got = runs["numpy", "float64"], runs[backend, dtype]
    tol = tolerance(dtype)
    if dtype == "float32":
        tol = {"rtol": 1e-3, "atol": 1e-4}  # random shapes include ill-conditioned ones
    for a, b in zip(got, reference):
        np.testing.assert_allclose(a, b, **tol)


@PROPS
@given(hidden=architectures, activation=st.sampled_from(nn.ACTIVATIONS), n=st.integers(1, 6),
       seed=st.integers(0, 2**16))
def test_backprop_matches_finite_differences(hidden, activation, n, seed):
    rng = np.random.default_rng(seed)
    X, y = rng.normal(size=(n, 3)), rng.integers(0, 2, size=n)
    model = MLP(3, hidden, 2, activation, backend="numpy", dtype="float64", seed=seed)
    # Random biases too, and no ReLU input within reach of its kink at 0, where
    # finite differences straddle two slopes.
    params = [rng.normal(size=p.shape) for p in model.get_params()]
    model.set_params(params)
    if activation == "relu":
        import array_api_compat.numpy as xp

        h = X
        for W, b in zip(params[0:-2:2], params[1:-2:2]):
            z = h @ W + b
            assume(np.abs(z).min() > 1e-3)
            h = nn.relu(xp, z)
    _, grads = model.loss_and_gradients(X, y)
    numeric = finite_difference_grads(model, X, y, per_array=6)
    for g, n in zip(grads, numeric):
        checked = np.unravel_index(np.arange(min(6, g.size)), g.shape)
        np.testing.assert_allclose(g[checked], n[checked], rtol=1e-4, atol=1e-7)


@PROPS
@given(
    backend=USABLE,
    dtype=st.sampled_from(["float32", "float64"]),
    logits=st.lists(st.lists(st.floats(-1e4, 1e4), min_size=3, max_size=3), min_size=1, max_size=6),
)
def test_probabilities_are_finite_and_sum_to_one_for_huge_logits(backend, dtype, logits):
    from mlp_backends import get_backend

    be = get_backend(backend)
    p = be.to_numpy(nn.softmax(be.xp, be.asarray(np.array(logits), dtype)))
    assert np.isfinite(p).all() and (p >= 0).all()
    np.testing.assert_allclose(p.sum(axis=1), 1.0, rtol=1e-5 if dtype == "float32" else 1e-12)
