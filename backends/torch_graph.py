"""PyTorch's in-place step on CUDA, captured once per batch shape as a CUDA graph and replayed.

A training step of a small network is some sixty kernel launches from
Python, each costing more than its work at batch 256; one graph replay
launches them all at once. PyTorch supports capturing cuBLAS products (it sets
a workspace per stream for it), so the whole step is captured: forward,
backward, the in-place update with its on-device judgement of the batch
(backends/torch_inplace.py), the loss and the count of hits.

A graph replays the recorded kernels with the recorded pointers, so the
step's inputs are static: the parameters and moments are the very tensors
the in-place update writes (the model's own), the batch is copied into a
static X and Y per batch shape, and Adam's step size and epsilon for the step
(computed on the host, as the eager step does) are copied before each replay
into a float64 device tensor that the graph reads. The short last batch gets
its own graph; the full batches' graph is kept. Given other parameter
tensors (another fit, set_params, a restore) the graphs are recorded anew.

Capture follows PyTorch's recipe: warm-up calls on a side stream first
(cuBLAS handles and the allocator's pools are made outside the capture),
then `torch.cuda.graph`. Warm-up calls update the parameters like any step,
so `GraphedStep` saves and restores them around a recording. `capture` is
a parameter, so the tests run all of this on the CPU with a stand-in.
"""

from __future__ import annotations

import logging
from typing import Callable

import torch

from mlp_backends.fastpath import fall_back

log = logging.getLogger(__name__)


def cuda_graph_capture(fn: Callable, warm_up: int = 2) -> Callable:
    """Record fn() as a CUDA graph; return `replay()`, which relaunches it on the current
    stream and returns the tensors fn returned when recorded, holding the new values."""
    side = torch.cuda.Stream()
    side.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(side):
        for _ in range(warm_up):
            fn()
    torch.cuda.current_stream().wait_stream(side)
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        outs = fn()

    def replay():
        graph.replay()
        return outs

    replay.graph = graph
    return replay


class _Recording:
    """One batch shape's graph: its static batch and the replay."""

    def __init__(self, X, Y, replay):
        self.X, self.Y, self.replay = X, Y, replay


class GraphedStep:
    """`step` (an in-place step: it writes params and state) recorded once per batch shape and
    replayed; same signature and numbers. `recordings` and `replays` count what it did."""

    mutates_params = True

    def __init__(self, step: Callable, capture: Callable = cuda_graph_capture):
        self.step, self.capture = step, capture
        self.config, self.rebuild = step.config, step.rebuild
        self.recordings = self.replays = 0
        self.failed = False  # capture failed once: the step runs eagerly from then on
        self._graphs: dict = {}
        self._over: list = []  # the parameter and moment tensors the graphs were recorded over
        self._coefficients = None  # (step, eps) on the device: what the graphs read as `t`

    def __call__(self, params, state, Xb, Yb, t):
        if self.failed:
            return self.step(params, state, Xb, Yb, t)
        flat = [*params, *(a for group in state for a in group)]
        if len(flat) != len(self._over) or any(a is not b for a, b in zip(flat, self._over)):
            self._graphs.clear()  # recorded over other tensors
            self._over = flat
        key = (tuple(Xb.shape), tuple(Yb.shape), Xb.dtype, Yb.dtype)
        if self._coefficients is None:
            self._coefficients = torch.zeros(2, dtype=torch.float64, device=Xb.device)
        optimizer = self.config["optimizer"]
        if hasattr(optimizer, "coefficients"):  # Adam: one small copy, ordered before the replay
            self._coefficients.copy_(torch.tensor(optimizer.coefficients(t), dtype=torch.float64), non_blocking=True)
        recording = self._graphs.get(key)
        if recording is None:
            try:
                recording = self._graphs[key] = self._record(params, state, Xb, Yb, flat)
            except Exception as exc:  # noqa: BLE001 - whatever the capture met; strict mode raises
                fall_back("CUDA graph capture of the training step", exc, log)
                self.failed = True
                return self.step(params, state, Xb, Yb, t)
        recording.X.copy_(Xb)
        recording.Y.copy_(Yb)
        _, _, loss, hits = recording.replay()
        self.replays += 1
        # Clones: the next replay overwrites the graph's outputs, and a caller may keep these.
        return params, state, loss.clone(), hits.clone()

    def _record(self, params, state, Xb, Yb, flat) -> _Recording:
        X, Y, t, step = torch.empty_like(Xb), torch.empty_like(Yb), self._coefficients, self.step
        X.copy_(Xb)
        Y.copy_(Yb)
        saved = [a.clone() for a in flat]  # warm-up calls are real steps: undo them
        try:
            replay = self.capture(lambda: step(params, state, X, Y, t))
        finally:
            for a, s in zip(flat, saved):
                a.copy_(s)
        self.recordings += 1
        return _Recording(X, Y, replay)
