"""The epoch loop's shortcuts take the same batches as the general path."""

from __future__ import annotations

import numpy as np
from conftest import tolerance

from mlp_backends import MLP, optim, train


def test_unshuffled_minibatches_are_the_rows_in_order(backend, blobs):
    be, dtype = backend
    X, y = blobs
    model = MLP(5, 8, 3, "tanh", backend=be, dtype=dtype, seed=3)
    model.fit(X, y, epochs=1, batch_size=16, learning_rate=0.1, optimizer="sgd", shuffle=False)
    # The reference: NumPy float64, stepping through rows 0-15, 16-31, 32-47, 48-59 by hand.
    ref = MLP(5, 8, 3, "tanh", backend="numpy", dtype="float64", seed=3)
    xp, Y = ref.backend.xp, np.eye(3)[y]
    step, params = train.make_step(xp, optim.SGD(0.1), "tanh", 0.0), ref.params
    for t, lo in enumerate(range(0, 60, 16), start=1):
        params, _, _, _ = step(params, (), X[lo:lo + 16], Y[lo:lo + 16], t)
    for got, want in zip(model.get_params(), params):
        np.testing.assert_allclose(got, want, **tolerance(dtype))
