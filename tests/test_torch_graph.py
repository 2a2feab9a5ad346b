"""PyTorch's CUDA-graph step (backends/torch_graph.py).

On the CPU, with a stand-in capture that does to the tensors what
`torch.cuda.graph` does: warm-up calls that are real steps, then replays that
re-run the recorded work over the same static tensors and write the same
output tensors. It checks the plumbing: the plain step's numbers, one
recording per batch shape kept across epochs, new recordings for other
parameter tensors, outputs that survive later replays, and a failed capture
that falls back (or raises under the strict switch). On a GPU: real graphs.
"""

from __future__ import annotations

import logging

import numpy as np
import pytest
from conftest import step_problem, tolerance

from mlp_backends import get_backend, optim, registry, train
from mlp_backends.errors import FastPathError
from mlp_backends.fastpath import STRICT_ENV

pytestmark = pytest.mark.requires_backend("torch")

OPTIMIZERS = {"sgd": optim.SGD(0.1), "momentum": optim.Momentum(0.05, nesterov=True), "adam": optim.Adam(0.01)}


def graph_like(fn):
    """What torch.cuda.graph does, on the CPU: warm-up steps, then replays into the same outputs."""
    fn(), fn()  # warm-up calls update the parameters: GraphedStep must undo them
    outs = []

    def replay():
        new = fn()
        if not outs:
            outs.extend(new)
        else:
            outs[2].copy_(new[2])
            outs[3].copy_(new[3])
        return tuple(outs)

    return replay


def _steps(be, opt, activation="tanh"):
    """The eager in-place step and the same step under GraphedStep with the stand-in capture."""
    from backends.torch_graph import GraphedStep
    from backends.torch_inplace import TorchInPlaceUpdate

    eager = train.make_step(be.xp, opt, activation, 0.01).rebuild(update=TorchInPlaceUpdate(opt))
    return eager, GraphedStep(eager, capture=graph_like)


def _train(step, be, params, opt, X, Y, batch=16, epochs=3):
    """Copies of params trained over epochs of three batches (16, 16, a short 8)."""
    params = [p.clone() for p in params]
    state, t, figures = opt.init(be.xp, params), 0, []
    for _ in range(epochs):
        for lo in range(0, X.shape[0], batch):
            t += 1
            params, state, loss, hits = step(params, state, X[lo:lo + batch], Y[lo:lo + batch], t)
            figures.append((loss, hits))  # kept as tensors: later replays must not change them
    return [be.to_numpy(p) for p in params], [float(v) for pair in figures for v in pair]


@pytest.mark.parametrize("name", list(OPTIMIZERS))
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_graphed_step_gives_the_eager_steps_numbers_with_one_recording_per_batch_shape(name, dtype):
    be, opt = get_backend("torch:cpu"), OPTIMIZERS[name]
    params, X, Y = step_problem(be, dtype)
    eager, graphed = _steps(be, opt)
    got, want = _train(graphed, be, params, opt, X, Y), _train(eager, be, params, opt, X, Y)
    for g, w in zip(got[0], want[0]):
        np.testing.assert_array_equal(g, w)  # Adam's coefficients too come from the host
    assert got[1] == want[1]
    assert graphed.recordings == 2, "one graph for the full batches, one for the short last batch, kept"
    assert graphed.replays == 9 and not graphed.failed


def test_other_parameter_tensors_are_recorded_anew():
    be, opt = get_backend("torch:cpu"), optim.Adam(0.01)
    params, X, Y = step_problem(be, "float32")
    _, graphed = _steps(be, opt)
    _train(graphed, be, params, opt, X, Y, epochs=1)
    _train(graphed, be, params, opt, X, Y, epochs=1)  # a second fit: new parameter tensors
    assert graphed.recordings == 4


def test_a_failed_capture_falls_back_to_the_eager_step_or_raises_when_strict(monkeypatch, caplog):
    be, opt = get_backend("torch:cpu"), optim.Adam(0.01)
    params, X, Y = step_problem(be, "float32")
    eager, graphed = _steps(be, opt)

    def failing(fn):
        fn()  # a warm-up step ran before the capture failed: it must be undone
        raise RuntimeError("operation not permitted when stream is capturing")

    graphed.capture = failing
    monkeypatch.setenv(STRICT_ENV, "1")
    with pytest.raises(FastPathError, match="CUDA graph capture of the training step failed"):
        _train(graphed, be, params, opt, X, Y, epochs=1)
    monkeypatch.delenv(STRICT_ENV)
    _, graphed = _steps(be, opt)
    graphed.capture = failing
    with caplog.at_level(logging.WARNING):
        got = _train(graphed, be, params, opt, X, Y)
    assert graphed.failed and "CUDA graph capture of the training step failed" in caplog.text
    want = _train(eager, be, params, opt, X, Y)
    for g, w in zip(got[0], want[0]):
        np.testing.assert_array_equal(g, w)


@pytest.mark.parametrize("name", list(OPTIMIZERS))
def test_torch_on_cuda_replays_real_graphs_with_the_plain_steps_numbers(name, monkeypatch):
    if not registry.backend_info("torch").is_gpu:
        pytest.skip("torch: no CUDA device here")
    import torch

    from backends.torch_graph import GraphedStep

    monkeypatch.setenv(STRICT_ENV, "1")  # a capture that fails raises
    be, opt = get_backend("torch:cuda"), OPTIMIZERS[name]
    params, X, Y = step_problem(be, "float32")
    plain = train.make_step(be.xp, opt, "relu", 0.01)
    fast = be.compile(plain)
    assert isinstance(fast, GraphedStep)
    got, want = _train(fast, be, params, opt, X, Y), _train(plain, be, params, opt, X, Y)
    for g, w in zip(got[0], want[0]):
        np.testing.assert_allclose(g, w, **tolerance("float32"))
    np.testing.assert_allclose(got[1], want[1], **tolerance("float32"))
    assert fast.recordings == 2 and fast.replays == 9 and not fast.failed
    assert all(isinstance(r.replay.graph, torch.cuda.CUDAGraph) for r in fast._graphs.values())
